"""`label`: a renamed or deleted label keeps the severity mapping right."""

from __future__ import annotations

from gidgethub import routing
from pydantic import Field

from core import services
from integrations.github.events import HandlerContext, Ignored, Label, Model, Payload, Text, WebhookEvent, on

router = routing.Router()


class FormerValue(Model):
    former: Text | None = Field(default=None, alias="from")


class LabelChanges(Model):
    name: FormerValue | None = None


class LabelEvent(Payload):
    label: Label
    changes: LabelChanges | None = None


@on(router, "label", action="edited")
async def label_edited(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(LabelEvent)
    former = payload.changes.name.former if payload.changes and payload.changes.name else None
    new = payload.label.name
    if not former or former == new:
        raise Ignored("label edited without a new name")
    await services.rename_label(payload.repository_name, former, new)
    return f"label {former!r} renamed to {new!r}"


@on(router, "label", action="deleted")
async def label_deleted(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(LabelEvent)
    await services.delete_label(payload.repository_name, payload.label.name)
    return f"label {payload.label.name!r} deleted"
