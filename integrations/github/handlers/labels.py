"""`label`: a renamed or deleted label keeps the severity mapping right."""

from __future__ import annotations

from gidgethub import routing, sansio

from core import services
from integrations.github.events import HandlerContext, Ignored, on, repository_of

router = routing.Router()


@on(router, "label", action="edited")
async def label_edited(event: sansio.Event, context: HandlerContext) -> str:
    former = ((event.data.get("changes") or {}).get("name") or {}).get("from")
    new = event.data["label"]["name"]
    if not former or former == new:
        raise Ignored("label edited without a new name")
    await services.rename_label(repository_of(event), former, new)
    return f"label {former!r} renamed to {new!r}"


@on(router, "label", action="deleted")
async def label_deleted(event: sansio.Event, context: HandlerContext) -> str:
    name = event.data["label"]["name"]
    await services.delete_label(repository_of(event), name)
    return f"label {name!r} deleted"
