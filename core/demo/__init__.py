"""A realistic sample: a shop's release and sprint milestones, loaded through the services.

Loading twice changes nothing: launches, defects and decisions are all idempotent.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from core import services
from core.enums import Decision
from core.ingest import LaunchSource
from core.junit import parse_reports

REPOSITORY = "acme/shop"
REPORTS = Path(__file__).parent

POLICY = """\
defects:
  labels: [bug]
  verify_label: verified
plans:
  smoke: {workflow: ci.yml, artifacts: "junit-*"}
  regression: {workflow: nightly.yml}
milestones:
  "v2.0":
    plans: [smoke, regression]
    branches: ["release/2.0"]
    required: ["plan:smoke", "com.acme.shop.checkout.*"]
    pass_rate: 0.95
    max_open_defects: {critical: 0, high: 0}
    require_verified: true
    coverage: 1.0
    signoff: {approvers: [U012AB3CD, U045EF6GH], quorum: 2, allow_early_signoff: true}
  "Sprint 24":
    plans: [smoke]
    branches: [main]
    pass_rate: 0.9
    max_open_defects: {critical: 0}
"""

# (days ago, plan, report, branch, run id)
LAUNCHES = [
    (6, "smoke", "smoke-1.xml", "release/2.0", "9101"),
    (5, "regression", "regression-1.xml", "release/2.0", "9102"),
    (4, "smoke", "smoke-1.xml", "main", "9103"),
    (3, "smoke", "smoke-2.xml", "release/2.0", "9104"),
    (2, "smoke", "smoke-2.xml", "main", "9105"),
    (1, "regression", "regression-2.xml", "release/2.0", "9106"),
    (1, "smoke", "smoke-3.xml", "release/2.0", "9107"),
]

# (number, title, labels, state, state_reason, milestone, days ago)
ISSUES: list[tuple[int, str, list[str], Literal["open", "closed"], str | None, str, int]] = [
    (101, "Refund charges the card twice", ["bug", "P0"], "open", None, "v2.0", 6),
    (102, "Cart total rounds half-cents down", ["bug", "high"], "closed", "completed", "v2.0", 5),
    (103, "Coupon can be applied twice", ["bug", "P1", "verified"], "closed", "completed", "v2.0", 4),
    (104, "Shipping estimate flickers on mobile", ["bug", "medium"], "open", None, "v2.0", 3),
    (105, "Typo in the order confirmation e-mail", ["bug", "low"], "open", None, "v2.0", 2),
    (106, "Search ignores accents", ["bug"], "open", None, "v2.0", 2),
    (110, "Login loops after password reset", ["bug", "critical"], "closed", "completed", "Sprint 24", 3),
    (111, "Wishlist export is slow", ["bug", "P3"], "open", None, "Sprint 24", 1),
]


async def load_demo() -> list[str]:
    now = datetime.now(UTC)
    today = now.date()
    await services.apply_policy_file(REPOSITORY, POLICY)
    await services.save_milestone(
        REPOSITORY, "v2.0", target_date=today + timedelta(days=10), description="Spring release", github_number=7
    )
    await services.save_milestone(
        REPOSITORY, "Sprint 24", target_date=today + timedelta(days=3), description="Two-week sprint", github_number=8
    )
    for days_ago, plan, report, branch, run_id in LAUNCHES:
        finished = now - timedelta(days=days_ago, hours=2)
        await services.record_launch(
            parse_reports([REPORTS / report]),
            LaunchSource(
                repository=REPOSITORY,
                plan=plan,
                source_id=run_id,
                commit_sha=hashlib.sha1(run_id.encode()).hexdigest(),
                branch=branch,
                url=f"https://github.com/{REPOSITORY}/actions/runs/{run_id}",
                started_at=finished - timedelta(minutes=9),
                finished_at=finished,
            ),
        )
    for number, title, labels, state, reason, milestone, days_ago in ISSUES:
        await services.upsert_defect(
            REPOSITORY,
            services.IssueFacts(
                number=number,
                title=title,
                labels=labels,
                state=state,
                state_reason=reason,
                url=f"https://github.com/{REPOSITORY}/issues/{number}",
                milestone_title=milestone,
                created_at=now - timedelta(days=days_ago + 1),
                updated_at=now - timedelta(days=days_ago),
                closed_at=now - timedelta(days=days_ago) if state == "closed" else None,
            ),
        )
    await services.record_decision(
        REPOSITORY,
        "v2.0",
        "U045EF6GH",
        Decision.APPROVE,
        comment="QA sign-off for the release branch",
        user_name="Dana (QA lead)",
    )
    return ["v2.0", "Sprint 24"]
