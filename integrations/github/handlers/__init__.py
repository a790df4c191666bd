"""Every webhook handler, one module per concern, composed into one router."""

from gidgethub import routing

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
