"""The engine's one entry point: the CLI, the GitHub webhooks and the Slack bot call these.

Every write runs in one transaction and ends with `changes.after_change`, which evaluates
the gate afresh, dismisses approvals that went stale, marks completion, and
appends a snapshot when the metrics moved. Callers get back what changed, so they
can tell people (checks, Slack) without recomputing anything.

One module per concept: `milestones`, `dashboard` (the web pages' reads), `policies` (the policy file and the defects it
classifies), `launches`, `defects` (issues and labels), `pull_requests`, `signoffs`
(decisions), `approvers`, `quarantine` (tests kept out of the gate by hand), `requests` (sign-off requests in Slack), `tokens` (upload
tokens) and `queries` (reads).
Callers use this package: `from core import services`, then `services.record_launch(...)`.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
