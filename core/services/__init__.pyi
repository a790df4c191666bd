# The names the package offers (`name as name`: a stub's way to say re-exported), read by
# type checkers and, at run time, by lazy_loader: a submodule is imported when one of its
# names is first used.
from .approvers import (
    check_approver_edit as check_approver_edit,
    edit_approvers as edit_approvers,
    milestone_approvers as milestone_approvers,
    stale_user_groups as stale_user_groups,
    store_user_groups as store_user_groups,
)
from .changes import (
    MilestoneChange as MilestoneChange,
    snapshot_metrics as snapshot_metrics,
)
from .dashboard import (
    milestone_dashboard as milestone_dashboard,
    overview as overview,
    repository_names as repository_names,
)
from .defects import (
    DefectOutcome as DefectOutcome,
    IssueFacts as IssueFacts,
    delete_label as delete_label,
    rename_label as rename_label,
    upsert_defect as upsert_defect,
)
from .launches import (
    LaunchConflict as LaunchConflict,
    LaunchOutcome as LaunchOutcome,
    record_launch as record_launch,
)
from .milestones import (
    KEEP as KEEP,
    Clone as Clone,
    HasHistory as HasHistory,
    Keep as Keep,
    MilestoneRecord as MilestoneRecord,
    clone_milestone as clone_milestone,
    completion_announced as completion_announced,
    delete_milestone as delete_milestone,
    edit_milestone as edit_milestone,
    github_milestone_closed as github_milestone_closed,
    mark_calendar_alerts as mark_calendar_alerts,
    milestone_by_id as milestone_by_id,
    milestone_record as milestone_record,
    record_alerted as record_alerted,
    record_github_twin as record_github_twin,
    save_milestone as save_milestone,
    unlink_github_milestone as unlink_github_milestone,
)
from .policies import (
    PolicyInvalid as PolicyInvalid,
    apply_policy_file as apply_policy_file,
    classify as classify,
    policy_is_current as policy_is_current,
    repository_policy as repository_policy,
)
from .pull_requests import (
    PullRequestFacts as PullRequestFacts,
    record_pull_request as record_pull_request,
)
from .quarantine import (
    QuarantineEdit as QuarantineEdit,
    QuarantineRefused as QuarantineRefused,
    edit_quarantine as edit_quarantine,
)
from .queries import (
    TestState as TestState,
    awaiting_signoff as awaiting_signoff,
    find_milestone as find_milestone,
    get_verdict as get_verdict,
    latest_launches as latest_launches,
    list_milestones as list_milestones,
    milestone_verdict as milestone_verdict,
    read_milestone as read_milestone,
    signoff_state as signoff_state,
    test_states as test_states,
)
from .requests import (
    RequestAt as RequestAt,
    live_request as live_request,
    open_signoff_request as open_signoff_request,
    request_shown as request_shown,
    signoff_request as signoff_request,
    signoff_request_at as signoff_request_at,
)
from .signoffs import (
    DecisionOutcome as DecisionOutcome,
    NotAnApprover as NotAnApprover,
    SignoffRefused as SignoffRefused,
    dismiss_decision as dismiss_decision,
    record_decision as record_decision,
    signoff_entry as signoff_entry,
    withdraw_decision as withdraw_decision,
)
from .tokens import (
    TokenGrant as TokenGrant,
    TokenInfo as TokenInfo,
    TokenRefused as TokenRefused,
    authenticate_token as authenticate_token,
    create_token as create_token,
    list_tokens as list_tokens,
    revoke_token as revoke_token,
    take_upload_slot as take_upload_slot,
)
