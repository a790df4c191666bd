"""The `.github/milestones.yml` model and loader (PRODUCT.md section 5)."""

from __future__ import annotations

import textwrap

import pytest

from core.enums import Severity
from core.policy import DefectsConfig, MilestonePolicy, PlanConfig, PolicyFile, SignoffConfig, render_path
from core.policy_file import PolicyError, load_policy

# The example of PRODUCT.md section 5, verbatim.
EXAMPLE = """\
defects:
  labels: [bug]
  verify_label: verified
plans:
  smoke: {workflow: ci.yml, artifacts: "junit-*"}
  regression: {workflow: nightly.yml}
milestones:
  "v2.0":
    plans: [smoke, regression]
    branches: ["release/2.0", main]
    required: ["plan:smoke", "tests/checkout/**"]
    pass_rate: 0.98
    max_open_defects: {critical: 0, high: 0}
    require_verified: true
    coverage: 1.0
    signoff: {approvers: [U012AB3CD, U045EF6GH], quorum: 2, prevent_self_approval: true}
    informational: false   # true: the PR check reports but never fails (like Codecov's)
  default: {plans: [smoke], max_open_defects: {critical: 0}}
"""


def errors_of(text: str | bytes) -> list[tuple[int | None, str, str]]:
    load = load_policy(text)
    assert load.policy is None and not load.ok
    return [(error.line, error.path, error.message) for error in load.errors]


def loaded(text: str) -> PolicyFile:
    load = load_policy(text)
    assert load.errors == []
    assert load.ok and load.policy is not None
    return load.policy


def test_product_example_loads_with_its_values() -> None:
    policy = loaded(EXAMPLE)

    assert policy.defects == DefectsConfig(labels=["bug"], verify_label="verified")
    assert policy.plans == {
        "smoke": PlanConfig(workflow="ci.yml", artifacts="junit-*"),
        "regression": PlanConfig(workflow="nightly.yml", artifacts="*"),
    }
    release = policy.policy_for("v2.0")
    assert release.plans == ["smoke", "regression"]
    assert release.branches == ["release/2.0", "main"]
    assert release.required == ["plan:smoke", "tests/checkout/**"]
    assert release.pass_rate == 0.98
    assert release.required_pass_rate == 1.0
    assert release.max_open_defects == {Severity.CRITICAL: 0, Severity.HIGH: 0}
    assert release.require_verified is True
    assert release.coverage == 1.0
    assert release.signoff == SignoffConfig(
        approvers=["U012AB3CD", "U045EF6GH"], quorum=2, prevent_self_approval=True, allow_early_signoff=False
    )
    assert release.signoff.required_approvals == 2
    assert release.informational is False

    fallback = policy.policy_for("v3")
    assert fallback is policy.milestones["default"]
    # No merging: the default entry's limits replace the built-in ones entirely.
    assert fallback.max_open_defects == {Severity.CRITICAL: 0}
    assert fallback.plans == ["smoke"]
    assert fallback.pass_rate == 0.95
    assert fallback.signoff == SignoffConfig()


def test_policy_survives_a_json_round_trip() -> None:
    policy = loaded(EXAMPLE)
    assert PolicyFile.model_validate(policy.model_dump(mode="json")) == policy


def test_defaults() -> None:
    milestone = MilestonePolicy()
    assert (milestone.plans, milestone.branches, milestone.required) == ([], [], [])
    assert (milestone.pass_rate, milestone.required_pass_rate, milestone.coverage) == (0.95, 1.0, 1.0)
    assert milestone.max_open_defects == {Severity.CRITICAL: 0, Severity.HIGH: 0}
    assert (milestone.require_verified, milestone.informational, milestone.close_on_complete) == (False, False, False)
    assert milestone.signoff == SignoffConfig(
        approvers=[], quorum="all", prevent_self_approval=False, allow_early_signoff=False
    )
    assert milestone.signoff.required_approvals == 0

    defects = DefectsConfig()
    assert defects.labels == ["bug"]
    assert defects.verify_label == "verified"
    assert defects.severity_labels == {
        Severity.CRITICAL: ["P0", "severity: critical", "critical"],
        Severity.HIGH: ["P1", "high"],
        Severity.MEDIUM: ["P2", "medium"],
        Severity.LOW: ["P3", "low"],
    }
    assert PlanConfig() == PlanConfig(workflow=None, artifacts="*")
    assert PolicyFile() == PolicyFile(defects=DefectsConfig(), plans={}, milestones={})
    assert PolicyFile().policy_for("anything") == MilestonePolicy()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # and another\n", "---\n", "---\n# nothing\n...\n"])
def test_empty_file_is_the_default_policy(text: str) -> None:
    assert loaded(text) == PolicyFile()


def test_bytes_with_a_byte_order_mark_load() -> None:
    assert loaded("\ufeffmilestones: {v1: {}}\n".encode()).milestones == {"v1": MilestonePolicy()}


@pytest.mark.parametrize(
    ("labels", "severity"),
    [
        (["P0"], Severity.CRITICAL),
        (["severity: critical"], Severity.CRITICAL),
        (["critical"], Severity.CRITICAL),
        (["P1"], Severity.HIGH),
        (["high"], Severity.HIGH),
        (["P2"], Severity.MEDIUM),
        (["medium"], Severity.MEDIUM),
        (["P3"], Severity.LOW),
        (["low"], Severity.LOW),
        (["p0"], Severity.CRITICAL),
        (["  Severity: CRITICAL "], Severity.CRITICAL),
        (["HIGH"], Severity.HIGH),
        (["bug", "low", "P1"], Severity.HIGH),  # the most severe wins
        (["bug", "needs triage"], Severity.NONE),
        ([], Severity.NONE),
    ],
)
def test_severity_for_default_labels(labels: list[str], severity: Severity) -> None:
    assert DefectsConfig().severity_for(labels) is severity


def test_severity_labels_from_the_file_replace_the_defaults() -> None:
    policy = loaded("defects:\n  severity_labels: {critical: [blocker], low: [Minor]}\n")
    assert policy.defects.severity_for(["BLOCKER"]) is Severity.CRITICAL
    assert policy.defects.severity_for(["minor"]) is Severity.LOW
    assert policy.defects.severity_for(["P0"]) is Severity.NONE


@pytest.mark.parametrize(
    ("labels", "is_defect"),
    [(["bug"], True), (["Bug "], True), (["enhancement", "BUG"], True), (["enhancement"], False), ([], False)],
)
def test_is_defect(labels: list[str], is_defect: bool) -> None:
    assert DefectsConfig().is_defect(labels) is is_defect


def test_unknown_keys_at_every_depth() -> None:
    text = """\
    defect: {}
    defects:
      label: [bug]
    plans:
      smoke:
        workflow: ci.yml
        artefacts: "junit-*"
    milestones:
      v1:
        pass_rat: 0.9
        signoff:
          approvers: [U1]
          quorom: 1
        whatever: 1
    """
    assert errors_of(textwrap.dedent(text)) == [
        (1, "defect", "unknown key 'defect'; did you mean 'defects'?"),
        (3, "defects.label", "unknown key 'label'; did you mean 'labels'?"),
        (7, "plans.smoke.artefacts", "unknown key 'artefacts'; did you mean 'artifacts'?"),
        (10, "milestones.v1.pass_rat", "unknown key 'pass_rat'; did you mean 'pass_rate'?"),
        (13, "milestones.v1.signoff.quorom", "unknown key 'quorom'; did you mean 'quorum'?"),
        (14, "milestones.v1.whatever", "unknown key 'whatever'"),
    ]


@pytest.mark.parametrize(
    ("entry", "path", "message"),
    [
        ("pass_rate: 95", "pass_rate", "must be between 0 and 1"),
        ("pass_rate: -0.1", "pass_rate", "must be between 0 and 1"),
        ("required_pass_rate: 1.5", "required_pass_rate", "must be between 0 and 1"),
        ("coverage: .nan", "coverage", "must be between 0 and 1"),
        ("pass_rate: high", "pass_rate", "must be a number"),
        ("pass_rate: true", "pass_rate", "must be a number"),
        ("coverage:", "coverage", "has no value; give it one or remove the key"),
        ("require_verified: maybe", "require_verified", "must be true or false"),
        ("informational: 1", "informational", "must be true or false"),
        ("plans: smoke", "plans", "must be a list, like [a, b]"),
        ("branches: [main, 2.0]", "branches[1]", "must be text; put it in quotes"),
        ("max_open_defects: {critical: -1}", "max_open_defects.critical", "must be at least 0"),
        ("max_open_defects: {high: 1.5}", "max_open_defects.high", "must be a whole number"),
        ("max_open_defects: {high: true}", "max_open_defects.high", "must be a whole number"),
        (
            "max_open_defects: {urgent: 0}",
            "max_open_defects.urgent",
            "unknown severity 'urgent'; use one of critical, high, medium, low, none",
        ),
        ("signoff: [U1]", "signoff", "must be a mapping of keys to values"),
        ("signoff: {quorum: 0}", "signoff.quorum", "must be a whole number of at least 1, or 'all'"),
        ("signoff: {quorum: most}", "signoff.quorum", "must be a whole number of at least 1, or 'all'"),
        ("signoff: {quorum: yes}", "signoff.quorum", "must be a whole number of at least 1, or 'all'"),
    ],
)
def test_bad_values_point_at_their_line(entry: str, path: str, message: str) -> None:
    text = f"plans:\n  smoke: {{}}\nmilestones:\n  v1:\n    close_on_complete: false\n    {entry}\n"
    assert errors_of(text) == [(6, f"milestones.v1.{path}", message)]


def test_every_error_is_reported_sorted_by_line() -> None:
    text = """\
    milestones:
      "v2.0":
        coverage: 2
        pass_rate: x
    defects:
      labels: bug
    """
    assert errors_of(textwrap.dedent(text)) == [
        (3, 'milestones."v2.0".coverage', "must be between 0 and 1"),
        (4, 'milestones."v2.0".pass_rate', "must be a number"),
        (6, "defects.labels", "must be a list, like [a, b]"),
    ]


def test_top_level_sections_must_be_mappings() -> None:
    assert errors_of("plans:\n  - smoke\nmilestones:\n") == [
        (2, "plans", "must be a mapping of keys to values"),
        (3, "milestones", "has no value; give it one or remove the key"),
    ]


def test_duplicate_keys_are_errors() -> None:
    text = """\
    milestones:
      v1:
        pass_rate: 0.9
        pass_rate: 0.8
      v1: {}
    milestones: {}
    """
    assert errors_of(textwrap.dedent(text)) == [
        (4, "milestones.v1.pass_rate", "duplicate key 'pass_rate' (first at line 3)"),
        (5, "milestones.v1", "duplicate key 'v1' (first at line 2)"),
        (6, "milestones", "duplicate key 'milestones' (first at line 1)"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "milestones:\n  v1:\n    plans: [smoke\n",
            4,
            "invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 3)",
        ),
        ("milestones:\n\tv1: {}\n", 2, "invalid YAML: found character '\\t' that cannot start any token"),
        (
            "defaults: &base {pass_rate: 0.9}\nmilestones:\n  v1: *base\n",
            3,
            "aliases (*name) are not allowed; write the value out in full",
        ),
        ("milestones: {}\n---\nmilestones: {}\n", 2, "only one YAML document is allowed; remove the second '---'"),
        ("- smoke\n", 1, "the file must be a mapping with the keys defects, plans and milestones"),
        ("\n\njust text\n", 3, "the file must be a mapping with the keys defects, plans and milestones"),
        (
            "plans:\n  smoke: !include smoke.yml\n",
            2,
            "unsupported YAML: could not determine a constructor for the tag '!include'",
        ),
        ("plans: !!omap [{smoke: {}}]\n", 1, "the tag tag:yaml.org,2002:omap is not allowed"),
        ("milestones:\n  ? [v1, v2]\n  : {}\n", 2, "keys must be plain text"),
        ("milestones:\n  v1: {pass_rate: \x07}\n", 2, "character #x0007 is not allowed in YAML"),
        (b"milestones:\n  v1: \xff\n", 2, "the file is not UTF-8 text"),
    ],
)
def test_yaml_problems_are_reported_with_their_line(text: str | bytes, line: int, message: str) -> None:
    assert [(error.line, error.message) for error in load_policy(text).errors] == [(line, message)]


def test_billion_laughs_is_refused_quickly() -> None:
    levels = ['a0: &a0 "lol"'] + [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]
    assert errors_of("\n".join(levels)) == [(2, "", "aliases (*name) are not allowed; write the value out in full")]


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert errors_of("milestones: " + "[" * 5000) == [(None, "", "the YAML is nested too deeply")]


def test_milestone_plans_must_be_declared() -> None:
    text = """\
    plans:
      smoke: {workflow: ci.yml}
    milestones:
      "v2.0":
        plans:
          - smoke
          - regresion
      default: {plans: [nightly]}
    """
    hint = "declare it under plans: (with no workflow for upload-only plans)"
    assert errors_of(textwrap.dedent(text)) == [
        (7, 'milestones."v2.0".plans[1]', f"unknown plan 'regresion'; {hint}"),
        (8, "milestones.default.plans[0]", f"unknown plan 'nightly'; {hint}"),
    ]


def test_plan_selectors_must_name_an_included_plan() -> None:
    text = """\
    plans: {smoke: {}, nightly: {}}
    milestones:
      v1:
        plans: [smoke]
        required: ["plan:smoke", "plan:nightly", "plan: ", "tests/**"]
      v2:
        required: ["plan:nightly"]
    """
    assert errors_of(textwrap.dedent(text)) == [
        (5, "milestones.v1.required[1]", "plan 'nightly' is not one of this milestone's plans (smoke)"),
        (5, "milestones.v1.required[2]", "'plan:' must be followed by a plan name"),
    ]


@pytest.mark.parametrize(
    ("signoff", "message"),
    [
        ("{approvers: [U1, U2], quorum: 3}", "quorum 3 is more than the 2 approvers"),
        ("{approvers: [U1], quorum: 2}", "quorum 2 is more than the 1 approver"),
        ("{approvers: [U1, '@qa', 'Alice Smith'], quorum: 2}", "'Alice Smith' is neither"),
    ],
)
def test_quorum_cannot_exceed_the_approvers(signoff: str, message: str) -> None:
    text = f"milestones:\n  v1:\n    signoff:\n      {signoff}\n"
    [(line, where, error)] = errors_of(text)
    assert line == 4 and where.startswith("milestones.v1.signoff.") and message in error


@pytest.mark.parametrize(
    "signoff",
    # Approvers kept in Slack, or user groups: how many people approve is known only there.
    ["{quorum: 1}", "{approvers: ['@qa-leads', U1], quorum: 3}"],
)
def test_a_quorum_over_groups_or_slack_approvers_is_checked_when_counted(signoff: str) -> None:
    load = load_policy(f"milestones:\n  v1:\n    signoff:\n      {signoff}\n")
    assert load.ok, load.errors


def test_approver_entries_are_user_ids_or_group_handles() -> None:
    load = load_policy(
        "milestones:\n  v1:\n    signoff: {approvers: [U012AB3CD, '@QA-Leads', release.managers, U012AB3CD]}\n"
    )
    assert load.policy.milestones["v1"].signoff.approvers == ["U012AB3CD", "@qa-leads", "@release.managers"]


def test_approvers_may_be_github_people_and_teams() -> None:
    load = load_policy(
        "milestones:\n  v1:\n    signoff: {approvers: [GitHub:OctoCat, 'github:@Acme/QA-Leads', U012AB3CD], quorum: 2}\n"
    )
    assert load.ok, load.errors
    assert load.policy.milestones["v1"].signoff.approvers == ["github:octocat", "github:@acme/qa-leads", "U012AB3CD"]
    for wrong in ("github:", "github:-octo", "github:@acme", "github:@/team", "github:a b"):
        bad = load_policy(f"milestones:\n  v1:\n    signoff: {{approvers: ['{wrong}']}}\n")
        assert not bad.ok and "GitHub login (github:octocat)" in str(bad.errors), wrong


@pytest.mark.parametrize(
    ("signoff", "required"),
    [
        (SignoffConfig(approvers=["U1", "@qa-leads", "U3"]), 3),
        (SignoffConfig(approvers=["U1", "@qa-leads", "U3"], quorum=2), 2),
        (SignoffConfig(approvers=["U1"], quorum="all"), 1),
    ],
)
def test_required_approvals(signoff: SignoffConfig, required: int) -> None:
    assert signoff.required_approvals == required


GLOBS = """\
milestones:
  "v2.0": {pass_rate: 0.5}
  "v2.*": {pass_rate: 0.6}
  "v[0-9]*": {pass_rate: 0.7}
  default: {pass_rate: 0.8}
  "*": {pass_rate: 0.9}
"""


@pytest.mark.parametrize(
    ("milestone", "pass_rate"),
    [
        ("v2.0", 0.5),  # exact key beats the globs
        ("v2.1", 0.6),  # first matching glob in file order
        ("v3", 0.7),
        ("V3", 0.9),  # case-sensitive; "*" comes later but still before default
        ("sprint 12", 0.9),
    ],
)
def test_policy_for_glob_keys(milestone: str, pass_rate: float) -> None:
    assert loaded(GLOBS).policy_for(milestone).pass_rate == pass_rate


def test_policy_for_without_a_match_or_default_is_the_built_in_policy() -> None:
    policy = loaded('milestones:\n  "v2.*": {pass_rate: 0.6}\n  "1.10": {pass_rate: 0.7}\n')
    assert policy.policy_for("v3") == MilestonePolicy()
    # Keys are taken as written, not as YAML numbers (1.10 would become 1.1).
    assert policy.policy_for("1.10").pass_rate == 0.7


@pytest.mark.parametrize(
    ("branches", "branch", "matches"),
    [
        ([], "main", True),
        ([], None, True),
        (["main"], None, False),
        (["main"], "main", True),
        (["main"], "Main", False),
        (["main"], "main2", False),
        (["release/*"], "release/2.0", True),
        (["release/*"], "release/2.0/rc1", True),
        (["release/*"], "releases/2.0", False),
        (["release/2.[0-3]", "main"], "release/2.2", True),
        (["release/2.[0-3]", "main"], "release/2.4", False),
        (["feature-?"], "feature-a", True),
    ],
)
def test_branch_matches(branches: list[str], branch: str | None, matches: bool) -> None:
    assert MilestonePolicy(branches=branches).branch_matches(branch) is matches


@pytest.mark.parametrize(
    ("workflow_file", "workflow_name", "plans"),
    [
        (".github/workflows/ci.yml", "CI", ["smoke", "lint"]),
        ("ci.yml", "whatever", ["smoke", "lint"]),
        (".github/workflows/nightly.yml", "Nightly regression", ["regression"]),
        (".github/workflows/other.yml", "Nightly regression", ["regression"]),
        (".github/workflows/other.yml", "CI / build", []),
        (".github/workflows/release.yml", "Release", []),
    ],
)
def test_plan_for_workflow(workflow_file: str, workflow_name: str, plans: list[str]) -> None:
    policy = PolicyFile(
        plans={
            "smoke": PlanConfig(workflow="ci.yml"),
            "regression": PlanConfig(workflow="Nightly regression"),
            "uploads": PlanConfig(),
            "lint": PlanConfig(workflow="ci.yml"),
        }
    )
    assert policy.plan_for_workflow(workflow_file, workflow_name) == plans


@pytest.mark.parametrize(
    ("error", "rendered"),
    [
        (
            PolicyError("milestones.yml", "milestones.v1.pass_rate", 4, "must be a number"),
            "milestones.yml:4: milestones.v1.pass_rate: must be a number",
        ),
        (PolicyError("milestones.yml", "", 2, "invalid YAML: oops"), "milestones.yml:2: invalid YAML: oops"),
        (PolicyError("milestones.yml", "", None, "too deep"), "milestones.yml: too deep"),
        (PolicyError("milestones.yml", "plans", None, "must be a mapping"), "milestones.yml: plans: must be a mapping"),
    ],
)
def test_policy_error_text(error: PolicyError, rendered: str) -> None:
    assert str(error) == rendered


def test_errors_carry_the_source() -> None:
    load = load_policy("milestones: {v1: {pass_rate: 2}}\n", source="repo/.github/milestones.yml")
    assert [str(error) for error in load.errors] == [
        "repo/.github/milestones.yml:1: milestones.v1.pass_rate: must be between 0 and 1"
    ]


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        ((), ""),
        (("milestones", "v2.0", "plans", 1), 'milestones."v2.0".plans[1]'),
        (("milestones", "release-2_x", "signoff", "quorum"), "milestones.release-2_x.signoff.quorum"),
        (("milestones", "sprint 1"), 'milestones."sprint 1"'),
        (("milestones", 'say "hi"'), 'milestones."say \\"hi\\""'),
    ],
)
def test_render_path(loc: tuple[str | int, ...], path: str) -> None:
    assert render_path(loc) == path


def test_an_impossible_date_is_reported_once_on_its_line() -> None:
    text = 'milestones:\n  "v2.0":\n    start: 2026-13-01\n    quarantine:\n      - {test: a.B, expires: 2026-02-30}\n'
    assert errors_of(text) == [
        (3, 'milestones."v2.0".start', "'2026-13-01' is not valid: month must be in 1..12"),
        (5, 'milestones."v2.0".quarantine[0].expires', "'2026-02-30' is not valid: day is out of range for month"),
    ]
