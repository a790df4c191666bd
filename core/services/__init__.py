"""The engine's one entry point: the CLI, the GitHub webhooks and the Slack bot call these.

Every write runs in one transaction and ends with `changes.after_change`, which evaluates
the gate afresh, dismisses approvals that went stale, marks completion, and
appends a snapshot when the metrics moved. Callers get back what changed, so they
can tell people (checks, Slack) without recomputing anything.

One module per concept: `milestones`, `dashboard` (the web pages' reads), `policies` (the policy file and the defects it
classifies), `launches`, `defects` (issues and labels), `pull_requests`, `signoffs`
(decisions), `approvers`, `requests` (sign-off requests in Slack), `tokens` (upload
tokens) and `queries` (reads).
Callers use this package: `from core import services`, then `services.record_launch(...)`.
"""

from core.catalog import NotFound
from core.readings import MilestoneReading, MilestoneSummary, SignoffState
from core.services.approvers import (
    check_approver_edit,
    edit_approvers,
    milestone_approvers,
    stale_user_groups,
    store_user_groups,
)
from core.services.changes import MilestoneChange, snapshot_metrics
from core.services.dashboard import milestone_dashboard, overview, repository_names
from core.services.defects import DefectOutcome, IssueFacts, delete_label, rename_label, upsert_defect
from core.services.launches import LaunchConflict, LaunchOutcome, record_launch
from core.services.milestones import (
    KEEP,
    Clone,
    HasHistory,
    Keep,
    MilestoneRecord,
    clone_milestone,
    completion_announced,
    delete_milestone,
    edit_milestone,
    github_milestone_closed,
    mark_calendar_alerts,
    milestone_by_id,
    milestone_record,
    record_alerted,
    record_github_twin,
    save_milestone,
    unlink_github_milestone,
)
from core.services.policies import PolicyInvalid, apply_policy_file, classify, policy_is_current, repository_policy
from core.services.pull_requests import PullRequestFacts, record_pull_request
from core.services.queries import (
    TestState,
    awaiting_signoff,
    find_milestone,
    get_verdict,
    latest_launches,
    list_milestones,
    milestone_verdict,
    read_milestone,
    signoff_state,
    test_states,
)
from core.services.requests import (
    RequestAt,
    live_request,
    open_signoff_request,
    request_shown,
    signoff_request,
    signoff_request_at,
)
from core.services.signoffs import (
    DecisionOutcome,
    NotAnApprover,
    SignoffRefused,
    dismiss_decision,
    record_decision,
    signoff_entry,
    withdraw_decision,
)
from core.services.tokens import (
    TokenGrant,
    TokenInfo,
    TokenRefused,
    authenticate_token,
    create_token,
    list_tokens,
    revoke_token,
    take_upload_slot,
)

__all__ = [
    "KEEP",
    "HasHistory",
    "MilestoneRecord",
    "delete_milestone",
    "edit_milestone",
    "milestone_record",
    "DecisionOutcome",
    "DefectOutcome",
    "IssueFacts",
    "Keep",
    "LaunchConflict",
    "LaunchOutcome",
    "MilestoneChange",
    "MilestoneReading",
    "MilestoneSummary",
    "NotAnApprover",
    "NotFound",
    "PolicyInvalid",
    "PullRequestFacts",
    "RequestAt",
    "SignoffRefused",
    "SignoffState",
    "TestState",
    "TokenGrant",
    "TokenInfo",
    "TokenRefused",
    "apply_policy_file",
    "authenticate_token",
    "awaiting_signoff",
    "classify",
    "completion_announced",
    "create_token",
    "delete_label",
    "dismiss_decision",
    "check_approver_edit",
    "edit_approvers",
    "find_milestone",
    "get_verdict",
    "github_milestone_closed",
    "latest_launches",
    "list_milestones",
    "list_tokens",
    "live_request",
    "mark_calendar_alerts",
    "milestone_approvers",
    "milestone_dashboard",
    "milestone_by_id",
    "milestone_verdict",
    "open_signoff_request",
    "overview",
    "policy_is_current",
    "read_milestone",
    "record_alerted",
    "record_github_twin",
    "record_decision",
    "record_launch",
    "record_pull_request",
    "rename_label",
    "revoke_token",
    "repository_names",
    "repository_policy",
    "request_shown",
    "Clone",
    "clone_milestone",
    "save_milestone",
    "signoff_entry",
    "signoff_request",
    "signoff_request_at",
    "signoff_state",
    "snapshot_metrics",
    "stale_user_groups",
    "store_user_groups",
    "take_upload_slot",
    "test_states",
    "unlink_github_milestone",
    "upsert_defect",
    "withdraw_decision",
]
