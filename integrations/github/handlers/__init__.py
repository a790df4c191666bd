"""Every webhook handler, one module per concern, composed into one router."""

from gidgethub import routing, sansio

from integrations.github.handlers import (
    check_runs,
    installations,
    issues,
    labels,
    milestones,
    ping,
    pull_requests,
    pushes,
    workflow_runs,
)

router = routing.Router(
    ping.router,
    installations.router,
    milestones.router,
    issues.router,
    labels.router,
    pull_requests.router,
    pushes.router,
    workflow_runs.router,
    check_runs.router,
)


def no_handler(event: str, action: str | None) -> str:
    """The note of a delivery that no handler takes."""
    return f"no handler for {event}" + (f" {action}" if action else "")


def unhandled(event: str, action: str | None) -> str | None:
    """Why a delivery of this event and action is ignored when no handler takes it; None if one does."""
    probe = sansio.Event({} if action is None else {"action": action}, event=event, delivery_id="")
    return None if router.fetch(probe) else no_handler(event, action)
