"""POST /api/v1/launches and upload tokens, through the real ASGI app on the test database."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import zlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from core import outbox, services, tokens
from core.catalog import NotFound
from core.junit import parse_reports
from core.models import Launch, Milestone, Outbox, TestCase, TestResult, UploadToken
from tests.conftest import JUNIT
from tests.github import running_app, settings_for

REPO = "acme/shop"
REPORTS = ["python-xunit-pytest.xml", "jest-junit.xml"]
POLICY = """
plans:
  smoke: {workflow: ci.yml}
  nightly: {workflow: nightly.yml}
milestones:
  "v2.0": {plans: [smoke], required: ["plan:smoke"]}
"""
JOB_URL = "https://gitlab.example.com/acme/shop/-/jobs/4242"
FIELDS = {"plan": "smoke", "commit": "a" * 40, "branch": "main", "source": "gitlab:4242", "url": JOB_URL}
MALFORMED = b'<?xml version="1.0"?>\n<testsuite name="broken">\n  <testcase classname="a.B" name="t">\n</testsuit>\n'


def parts(*names: str, gzipped: bool = False) -> list[tuple[str, tuple[str, bytes, str]]]:
    files = []
    for name in names:
        data = (JUNIT / name).read_bytes()
        files.append(("report", (f"reports/{name}", gzip.compress(data) if gzipped else data, "application/xml")))
    return files


def expected(*names: str) -> dict[str, int]:
    counts = parse_reports([JUNIT / name for name in names]).counts()
    del counts["suites"]  # a launch keeps its tests' counts, not how they were grouped
    return counts


class Api:
    """The app, a client, and an upload token of REPO."""

    def __init__(self, client: httpx.AsyncClient, token: str):
        self.client = client
        self.token = token

    async def upload(
        self,
        files: Any = None,
        fields: dict[str, str] | None = None,
        *,
        token: str | None = None,
        **request: Any,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **request.pop("headers", {})}
        return await self.client.post(
            "/api/v1/launches",
            params=FIELDS if fields is None else fields,
            files=files,
            headers=headers,
            **request,
        )


@pytest.fixture
async def api(db):
    await services.apply_policy_file(REPO, POLICY)
    token, _ = await services.create_token(REPO, "gitlab", [], "alice")
    settings = settings_for(db, public_url="https://milestones.example.com", upload_max_mb=2, upload_max_files=5)
    async with running_app(settings) as running:
        yield Api(running.client, token)


async def nothing_stored() -> None:
    assert await Launch.all().count() == 0
    assert await TestCase.all().count() == 0
    assert await TestResult.all().count() == 0


# Tokens ---------------------------------------------------------------------------------


def test_tokens_are_recognisable_and_checksummed() -> None:
    made = {tokens.new_token() for _ in range(50)}
    assert len(made) == 50
    for token in made:
        assert token.startswith("mgt_") and len(token) == 53 and tokens.well_formed(token)
    token = made.pop()
    # One character changed breaks the checksum: a look-alike is refused before any lookup.
    swapped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert not tokens.well_formed(swapped)
    assert not tokens.well_formed("ghp_" + token[4:])


async def test_only_a_hash_of_the_token_is_stored(db) -> None:
    token, info = await services.create_token(REPO, "jenkins", ["smoke", "nightly", "smoke"], "bob")
    stored = await UploadToken.get(name="jenkins")
    row = json.dumps([str(value) for value in stored.__dict__.values()])
    assert token not in row and token[12:] not in row
    assert stored.token_hash == tokens.token_hash(token)
    assert (info.plans, info.created_by, info.prefix, info.last_used_at) == (
        ["nightly", "smoke"],
        "bob",
        token[:8],
        None,
    )
    grant = await services.authenticate_token(token)
    assert (grant.name, grant.repository, grant.plans) == ("jenkins", REPO, ("nightly", "smoke"))


async def test_a_name_is_taken_until_revoked_and_revoked_tokens_stop_working(db) -> None:
    token, _ = await services.create_token(REPO, "ci", [], "alice")
    with pytest.raises(ValueError, match="acme/shop already has a token named ci"):
        await services.create_token(REPO, "ci", [], "alice")
    revoked = await services.revoke_token(REPO, "ci", "carol")
    assert revoked.revoked_by == "carol"
    with pytest.raises(services.TokenRefused, match=r"token ci of acme/shop was revoked on \d{4}-\d\d-\d\d"):
        await services.authenticate_token(token)
    again, _ = await services.create_token(REPO, "ci", [], "alice")
    assert (await services.authenticate_token(again)).name == "ci"
    listed = await services.list_tokens(REPO, include_revoked=True)
    assert [(info.name, info.revoked_by) for info in listed] == [("ci", "carol"), ("ci", None)]
    assert [info.name for info in await services.list_tokens(REPO)] == ["ci"]
    with pytest.raises(NotFound):
        await services.revoke_token(REPO, "nope", "carol")


async def test_a_token_is_revoked_by_its_name_alone_when_no_other_repository_has_one_so_named(db) -> None:
    token, _ = await services.create_token(REPO, "jenkins", [], "alice")
    await services.create_token("acme/other", "gitlab", [], "alice")
    await services.create_token("acme/api", "gitlab", [], "alice")

    revoked = await services.revoke_token(None, "jenkins", "carol")
    assert (revoked.repository, revoked.name, revoked.revoked_by) == (REPO, "jenkins", "carol")
    with pytest.raises(services.TokenRefused, match="token jenkins of acme/shop was revoked"):
        await services.authenticate_token(token)
    with pytest.raises(
        ValueError, match=r"^gitlab is a token of several repositories: acme/api, acme/other; name one with --repo$"
    ):
        await services.revoke_token(None, "gitlab", "carol")
    with pytest.raises(NotFound, match=r"^no live token named jenkins \(`milestones token list` shows them\)$"):
        await services.revoke_token(None, "jenkins", "carol")
    assert [info.name for info in await services.list_tokens(include_revoked=False)] == ["gitlab", "gitlab"]


# Recording ------------------------------------------------------------------------------


async def test_an_upload_is_recorded_once_as_an_artifact_launch_is(api: Api) -> None:
    first = await api.upload(parts(*REPORTS))

    assert first.status_code == 201, first.text
    answer = first.json()
    launch = await Launch.get(id=answer["launch"]["id"]).prefetch_related("plan")
    assert answer["counts"] == expected(*REPORTS)
    assert (launch.plan.name, launch.source_id, launch.commit_sha, launch.branch, launch.url) == (
        "smoke",
        "gitlab:4242",
        "a" * 40,
        "main",
        JOB_URL,
    )
    assert answer["launch"]["created"] is True and answer["launch"]["url"] == JOB_URL
    [milestone] = answer["milestones"]
    assert (milestone["name"], milestone["status"], milestone["status_text"]) == ("v2.0", "blocked", "blocked")
    assert milestone["url"].startswith("https://milestones.example.com/milestones/acme/shop/v2.0?key=")
    # The same service call as an artifact's launch: what the outside world is owed is marked.
    owed = await Outbox.filter(topic=outbox.MILESTONE_ALERTS).values_list("subject", flat=True)
    assert owed == [(await Milestone.get(name="v2.0")).id]

    again = await api.upload(parts(*REPORTS, gzipped=True))

    assert again.status_code == 200, again.text
    assert again.json()["launch"] == {**answer["launch"], "created": False}
    assert again.json()["milestones"] == []
    assert await Launch.all().count() == 1
    assert await TestResult.all().count() == expected(*REPORTS)["tests"]


async def test_one_gzip_body_is_one_report(api: Api) -> None:
    body = gzip.compress((JUNIT / "swift-xunit.xml").read_bytes())
    response = await api.upload(content=body, headers={"Content-Type": "application/gzip"})

    assert response.status_code == 201, response.text
    assert response.json()["counts"] == expected("swift-xunit.xml")


async def test_without_a_source_the_reports_identify_the_launch(api: Api) -> None:
    fields = {"plan": "smoke", "commit": "b" * 40}
    first = await api.upload(parts("swift-xunit.xml"), fields)
    # The same content, gzipped this time: the same launch.
    second = await api.upload(parts("swift-xunit.xml", gzipped=True), fields)
    other = await api.upload(parts("jest-junit.xml"), fields)

    assert (first.status_code, second.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["launch"]["source"].startswith("upload:")
    assert second.json()["launch"]["id"] == first.json()["launch"]["id"] != other.json()["launch"]["id"]


async def test_the_same_source_with_other_reports_is_a_conflict(api: Api) -> None:
    assert (await api.upload(parts("swift-xunit.xml"))).status_code == 201

    response = await api.upload(parts("jest-junit.xml"))

    assert response.status_code == 409
    assert response.json()["message"].startswith("plan smoke, source gitlab:4242, attempt 1 was recorded from other")
    assert await Launch.all().count() == 1


async def test_fields_may_come_as_form_fields(api: Api) -> None:
    form = {"plan": "nightly", "source": "jenkins:77", "attempt": "2"}
    response = await api.upload(parts("swift-xunit.xml"), {}, data=form)

    assert response.status_code == 201, response.text
    assert (response.json()["launch"]["plan"], response.json()["launch"]["attempt"]) == ("nightly", 2)


# Refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"commit": "abc"}, "plan is missing: name the test plan the launch belongs to"),
        ({"plan": "smoke", "attempt": "0"}, "attempt '0': a whole number from 1 to 2147483647"),
        (
            {"plan": "smoke", "url": "javascript:alert(1)"},
            "url 'javascript:alert(1)': a link to the CI job, http(s)://…",
        ),
        ({"plan": "smoke", "commit": "a" * 65}, "commit is longer than 64 characters"),
        (
            {"plan": "smoke", "comit": "abc"},
            "unknown field 'comit' (fields: plan, repository, commit, branch, source, ",
        ),
        # Past what the store keeps (PostgreSQL's integer; its text takes no NUL).
        (
            {"plan": "smoke", "attempt": "99999999999999999999"},
            "attempt '99999999999999999999': a whole number from 1 to 2147483647",
        ),
        ({"plan": "smoke", "attempt": "2147483648"}, "attempt '2147483648': a whole number from 1 to 2147483647"),
        ({"plan": "smoke", "branch": "main\x00"}, "branch 'main\\x00': control characters are not allowed"),
        ({"plan": "sm\x00oke"}, "plan 'sm\\x00oke': control characters are not allowed"),
        ({"plan": "smoke", "source": "job\n42"}, "source 'job\\n42': control characters are not allowed"),
        ({"plan": "smoke", "repository": "acme/shop\x00"}, "repository 'acme/shop\\x00': control characters"),
    ],
)
async def test_wrong_fields_are_refused_with_what_to_fix(api: Api, fields: dict[str, str], message: str) -> None:
    response = await api.upload(parts("swift-xunit.xml"), fields)
    as_form = await api.upload(parts("swift-xunit.xml"), {}, data=fields)

    for answer in (response, as_form):
        assert answer.status_code == 400
        assert answer.json()["error"] == "bad_request"
        assert answer.json()["message"].startswith(message)
    await nothing_stored()


async def test_a_report_named_with_control_characters_is_recorded_under_a_printable_name(api: Api) -> None:
    # Bytes as a client may send them in a part's filename; the name shows in warnings kept with the launch.
    declared = b'<testsuite name="declared" tests="3" failures="1"/>'
    body = (
        b'--b\r\nContent-Disposition: form-data; name="report"; filename="odd\x00\x01name.xml"\r\n'
        b"Content-Type: application/xml\r\n\r\n" + declared + b"\r\n--b--\r\n"
    )
    response = await api.upload(
        content=body, fields={"plan": "smoke"}, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )

    assert response.status_code == 201, response.text
    launch = await Launch.get(id=response.json()["launch"]["id"])
    assert launch.warnings and all("odd??name.xml" in warning for warning in launch.warnings)


async def test_tokens_prove_who_uploads(api: Api) -> None:
    missing = await api.client.post("/api/v1/launches", params=FIELDS, files=parts("swift-xunit.xml"))
    in_url = await api.client.post("/api/v1/launches", params={**FIELDS, "token": api.token})
    forged = await api.upload(parts("swift-xunit.xml"), token="mgt_" + "x" * 49)
    unknown = await api.upload(parts("swift-xunit.xml"), token=tokens.new_token())
    await services.revoke_token(REPO, "gitlab", "alice")
    revoked = await api.upload(parts("swift-xunit.xml"))

    for response in (missing, in_url, forged, unknown, revoked):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="milestones"'
        assert response.json()["error"] == "unauthorized"
    assert missing.json()["message"].startswith("no token: send Authorization: Bearer <token>")
    assert "never in the URL" in in_url.json()["message"]
    assert forged.json()["message"].startswith("not a milestones upload token")
    assert unknown.json()["message"].startswith("unknown token")
    assert "was revoked on" in revoked.json()["message"]
    await nothing_stored()


async def test_a_token_uploads_only_to_its_repository_and_plans(api: Api) -> None:
    other, _ = await services.create_token("acme/other", "gitlab", [], "alice")
    nightly_only, _ = await services.create_token(REPO, "perf-lab", ["nightly"], "alice")

    wrong_repo = await api.upload(parts("swift-xunit.xml"), {**FIELDS, "repository": REPO}, token=other)
    wrong_plan = await api.upload(parts("swift-xunit.xml"), token=nightly_only)
    # A plan named only in the form is checked as well.
    in_form = await api.upload(parts("swift-xunit.xml"), {}, data={"plan": "smoke"}, token=nightly_only)
    allowed = await api.upload(parts("swift-xunit.xml"), {**FIELDS, "plan": "nightly"}, token=nightly_only)

    assert (wrong_repo.status_code, wrong_plan.status_code, in_form.status_code) == (403, 403, 403)
    assert wrong_repo.json()["message"] == (
        "token gitlab uploads to acme/other (any plan), not to acme/shop: use that repository's token"
    )
    assert wrong_plan.json()["message"] == "token perf-lab uploads to acme/shop (nightly), not to plan smoke"
    assert allowed.status_code == 201
    assert await Launch.all().count() == 1


async def test_a_malformed_report_refuses_the_whole_upload(api: Api) -> None:
    files = [*parts("swift-xunit.xml"), ("report", ("reports/broken.xml", MALFORMED, "application/xml"))]
    response = await api.upload(files)

    assert response.status_code == 422
    assert response.json() == {
        "error": "malformed_report",
        "message": "reports/broken.xml:4: malformed XML: Opening and ending tag mismatch: testcase line 3 and "
        "testsuit; the upload was refused whole",
    }
    await nothing_stored()


async def test_gzip_that_is_not_gzip_is_refused(api: Api) -> None:
    broken = gzip.compress((JUNIT / "swift-xunit.xml").read_bytes())[:-30]
    response = await api.upload([("report", ("swift.xml.gz", broken, "application/gzip"))])

    assert response.status_code == 422
    assert response.json()["message"].startswith("swift.xml.gz: not readable as gzip")
    await nothing_stored()


def zip_bomb(inflated: int) -> bytes:
    """A valid report's start, then `inflated` bytes of white space: gzip shrinks it ~1000 times."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(b'<?xml version="1.0"?>\n<testsuite name="bomb"><testcase name="t"><system-out>')]
    block = b" " * (1024 * 1024)
    for _ in range(inflated // len(block)):
        out.append(compressor.compress(block))
    out.append(compressor.compress(b"</system-out></testcase></testsuite>"))
    out.append(compressor.flush())
    return b"".join(out)


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]


async def test_over_the_limits_is_413(api: Api) -> None:
    bomb = zip_bomb(8 * 1024 * 1024)
    assert len(bomb) < 10 * 1024
    too_big = b'<testsuite name="big">' + b" " * (3 * 1024 * 1024) + b"</testsuite>"
    # Hardly compressible: it fits the 2 MB as sent, not as inflated.
    noisy = (
        b'<testsuite name="noise"><system-out>' + os.urandom(1536 * 1024).hex().encode() + b"</system-out></testsuite>"
    )

    answers = {
        "bomb": await api.upload([("report", ("bomb.xml", bomb, "application/gzip"))]),
        "declared": await api.upload(content=too_big, headers={"Content-Type": "application/xml"}),
        "streamed": await api.upload(content=chunked(too_big), headers={"Content-Type": "application/xml"}),
        "files": await api.upload(parts(*["swift-xunit.xml"] * 6)),
        "inflated": await api.upload([("report", ("noise.xml", gzip.compress(noisy), "application/gzip"))]),
    }

    assert {name: response.status_code for name, response in answers.items()} == dict.fromkeys(answers, 413)
    messages = {name: response.json()["message"] for name, response in answers.items()}
    assert re.match(r"upload: bomb.xml expands \d{3,4} times \(zip bomb\?\)", messages["bomb"])
    assert messages["declared"].startswith("upload of 3.0 MB over the limit of 2.0 MB")
    assert messages["streamed"].startswith("upload passes the limit of 2.0 MB")
    assert messages["files"].startswith("upload: more than the limit of 5 files")
    assert messages["inflated"].startswith("upload: noise.xml inflates past the limit of 2.0 MB uncompressed")
    await nothing_stored()


async def test_a_body_of_another_kind_is_415(api: Api) -> None:
    response = await api.upload(content=b'{"tests": 3}', headers={"Content-Type": "application/json"})

    assert response.status_code == 415
    assert "send the reports as multipart/form-data files" in response.json()["message"]


async def test_the_rate_limit_is_per_token_and_shared_by_web_processes(db) -> None:
    await services.apply_policy_file(REPO, POLICY)
    token, _ = await services.create_token(REPO, "gitlab", [], "alice")
    other, _ = await services.create_token(REPO, "jenkins", [], "alice")
    settings = settings_for(db, upload_rate_limit=3)
    async with running_app(settings) as first, running_app(settings) as second:
        statuses = []
        for index in range(4):
            client = (first, second)[index % 2].client
            response = await Api(client, token).upload(parts("swift-xunit.xml"), {"plan": "smoke"})
            statuses.append(response.status_code)
        limited = response
        another = await Api(first.client, other).upload(parts("swift-xunit.xml"), {"plan": "smoke"})

    assert statuses == [201, 200, 200, 429]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["message"].startswith("token gitlab may upload 3 times a minute; retry in ")
    assert another.status_code == 200
    used = await UploadToken.get(name="gitlab")
    assert used.last_used_at is not None and used.window_count == 3


# The OpenAPI document -------------------------------------------------------------------


async def test_the_openapi_document_is_valid_and_describes_every_answer(api: Api, monkeypatch) -> None:
    document = (await api.client.get("/api/v1/openapi.json")).json()
    validate(document)
    operation = document["paths"]["/api/v1/launches"]["post"]
    other, _ = await services.create_token("acme/other", "x", [], "alice")
    answers = [
        await api.upload(parts(*REPORTS)),
        await api.upload(parts(*REPORTS)),
        await api.upload(parts(*REPORTS), {"commit": "abc"}),
        await api.upload(parts(*REPORTS), token="mgt_" + "0" * 49),
        await api.upload(parts(*REPORTS), {**FIELDS, "repository": REPO}, token=other),
        await api.upload(parts("swift-xunit.xml")),
        await api.upload(content=zip_bomb(8 * 1024 * 1024), headers={"Content-Type": "application/gzip"}),
        await api.upload(content=b"{}", headers={"Content-Type": "application/json"}),
        await api.upload(content=MALFORMED, headers={"Content-Type": "application/xml"}),
    ]

    async def deadlocked(report: object, source: object) -> None:
        raise asyncpg.DeadlockDetectedError("deadlock detected")

    monkeypatch.setattr(services, "record_launch", deadlocked)
    answers.append(await api.upload(parts("swift-xunit.xml"), {"plan": "smoke", "source": "busy"}))
    assert [answer.status_code for answer in answers] == [201, 200, 400, 401, 403, 409, 413, 415, 422, 503]
    assert set(operation["responses"]) == {
        *("200", "201", "400", "401", "403", "409", "413", "415", "422", "429", "503")
    }
    for answer in answers:
        described = operation["responses"][str(answer.status_code)]
        schema = described["content"]["application/json"]["schema"]
        # The schema's references resolve within the document's components.
        OAS31Validator({**schema, "components": document["components"]}).validate(answer.json())
        assert {name.lower() for name in described.get("headers", {})} <= set(answer.headers)
    assert set(operation["responses"]["503"]["headers"]) == {"Retry-After"}
    with pytest.raises(ValidationError):
        OAS31Validator({"$ref": "#/components/schemas/Launch", "components": document["components"]}).validate(
            {**answers[0].json(), "counts": {"tests": -1}}
        )


def test_the_test_helpers_build_real_gzip() -> None:
    with gzip.GzipFile(fileobj=io.BytesIO(zip_bomb(2 * 1024 * 1024))) as inflated:
        assert inflated.read().startswith(b'<?xml version="1.0"?>')
