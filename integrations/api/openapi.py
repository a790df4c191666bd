"""The OpenAPI document of the upload API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from core.enums import GateStatus
from integrations.api.launches import MOST_ATTEMPTS
from integrations.limits import ReportLimits, size_text

_FIELDS: dict[str, dict[str, Any]] = {
    "plan": {"type": "string", "maxLength": 100, "description": "The test plan the launch belongs to (required)."},
    "repository": {
        "type": "string",
        "maxLength": 200,
        "description": "OWNER/NAME; default the token's repository, and refused (403) if it is another.",
    },
    "commit": {"type": "string", "maxLength": 64, "description": "The commit SHA tested."},
    "branch": {"type": "string", "maxLength": 255, "description": "The branch tested."},
    "source": {
        "type": "string",
        "maxLength": 200,
        "description": "What identifies the launch, e.g. the CI job (`gitlab:123456`). With plan and attempt it "
        "makes the upload idempotent. Default: a digest of the reports and fields.",
    },
    "attempt": {
        "type": "integer",
        "minimum": 1,
        "maximum": MOST_ATTEMPTS,
        "default": 1,
        "description": "A higher attempt of the same source replaces the earlier ones for the gate.",
    },
    "url": {
        "type": "string",
        "format": "uri",
        "maxLength": 500,
        "description": "A link to the CI job, shown wherever the launch is linked (checks, pages, Slack, CLI).",
    },
}

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "A code for programs."},
        "message": {"type": "string", "description": "What went wrong and what to fix, in one line."},
    },
}

_COUNTS = {
    "type": "object",
    "required": ["files", "tests", "passed", "failed", "errors", "skipped", "flaky"],
    "properties": {
        name: {"type": "integer", "minimum": 0}
        for name in ("files", "tests", "passed", "failed", "errors", "skipped", "flaky")
    },
}

_NULLABLE_STRING = {"type": ["string", "null"]}

_LAUNCH = {
    "type": "object",
    "required": ["launch", "counts", "milestones"],
    "properties": {
        "launch": {
            "type": "object",
            "required": ["id", "created", "superseded", "repository", "plan", "source", "attempt"],
            "properties": {
                "id": {"type": "integer"},
                "created": {"type": "boolean", "description": "False when this source and attempt were recorded."},
                "superseded": {"type": "boolean", "description": "A higher attempt of the source is recorded."},
                "repository": {"type": "string"},
                "plan": {"type": "string"},
                "source": {"type": "string"},
                "attempt": {"type": "integer", "minimum": 1},
                "commit": _NULLABLE_STRING,
                "branch": _NULLABLE_STRING,
                "url": _NULLABLE_STRING,
            },
        },
        "counts": {"$ref": "#/components/schemas/Counts"},
        "milestones": {
            "type": "array",
            "description": "Each milestone whose gate the launch moved, with its new status.",
            "items": {
                "type": "object",
                "required": ["name", "status", "status_text", "previous_status", "url"],
                "properties": {
                    "name": {"type": "string"},
                    "status": {"$ref": "#/components/schemas/Status"},
                    "status_text": {"type": "string"},
                    "previous_status": {"oneOf": [{"$ref": "#/components/schemas/Status"}, {"type": "null"}]},
                    "url": {**_NULLABLE_STRING, "description": "The milestone page (with PUBLIC_URL)."},
                },
            },
        },
    },
}


_RETRY_AFTER = {"description": "Seconds to wait before sending again.", "schema": {"type": "integer"}}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def openapi_document(limits: ReportLimits, rate_per_minute: int) -> dict[str, Any]:
    size = size_text(limits.max_transfer_bytes)
    report_file = {"type": "string", "contentMediaType": "application/octet-stream"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Milestone gate upload API",
            "version": "1",
            "description": "Test results from any CI: JUnit/xUnit reports recorded as launches of a test plan, "
            "with the same semantics as GitHub Actions artifacts.",
        },
        "paths": {
            "/api/v1/launches": {
                "post": {
                    "operationId": "uploadLaunch",
                    "summary": "Record JUnit/xUnit reports as one launch",
                    "description": (
                        "The fields go in the query string or as form fields. The reports go as "
                        "multipart/form-data file parts (any part name), each plain XML or gzip, or one report "
                        "as the whole body. One call is one launch, recorded whole or not at all; a malformed "
                        f"report refuses it with `file:line: reason`. Limits: {size} as sent and {size} of XML "
                        f"inflated per upload, {limits.max_files} files, gzip expanding at most "
                        f"{limits.max_ratio} times; {rate_per_minute} uploads a minute per token. The same "
                        "plan, source and attempt again answer 200 and change nothing (409 if the reports "
                        "differ)."
                    ),
                    "security": [{"uploadToken": []}],
                    "parameters": [
                        {"name": name, "in": "query", "required": False, "schema": schema}
                        for name, schema in _FIELDS.items()
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        **_FIELDS,
                                        "report": {"type": "array", "items": report_file},
                                    },
                                },
                            },
                            "application/gzip": {"schema": report_file},
                            "application/xml": {"schema": report_file},
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Recorded: the launch, its counts and the milestones it moved.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Launch"}}},
                        },
                        "200": {
                            "description": "This plan, source and attempt were recorded already: the launch as recorded, "
                            "with no milestones, since nothing moved.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Launch"}}},
                        },
                        "400": _error("A field is missing or wrong, or no report was sent."),
                        "401": _error(
                            "No token, or one that is unknown, malformed or revoked.",
                            {"WWW-Authenticate": {"description": "Bearer.", "schema": {"type": "string"}}},
                        ),
                        "403": _error("The token may not upload to this repository or plan."),
                        "409": _error("This plan, source and attempt were recorded from other reports."),
                        "413": _error("Over a limit: size as sent, size inflated, file count, or ratio."),
                        "415": _error("The body is neither multipart/form-data nor XML or gzip."),
                        "422": _error("A report is malformed or not JUnit/xUnit: `file:line: reason`."),
                        "429": _error(
                            "Over the token's rate limit.",
                            {"Retry-After": _RETRY_AFTER},
                        ),
                        "503": _error(
                            "The database is unavailable, or was busy: nothing was stored; send the same upload "
                            "again after Retry-After seconds (`milestones upload` does).",
                            {"Retry-After": _RETRY_AFTER},
                        ),
                    },
                }
            }
        },
        "components": {
            "securitySchemes": {
                "uploadToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An upload token from `milestones token create` (mgt_…).",
                }
            },
            "schemas": {
                "Launch": _LAUNCH,
                "Counts": _COUNTS,
                "Error": _ERROR,
                "Status": {
                    "type": "string",
                    "enum": [status.value for status in GateStatus],
                },
            },
        },
    }


def openapi_endpoint(document: dict[str, Any]) -> Any:
    async def serve(request: Request) -> JSONResponse:
        return JSONResponse(document)

    return serve
