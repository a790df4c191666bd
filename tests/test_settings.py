"""Settings from the environment and `.env`: `Settings()` built directly, since get_settings() is cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings, describe


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting from the caller's environment, and a working directory without `.env`."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    for variable in (
        "GITHUB_WEBHOOK_SECRET",
        "GITHUB_APP_ID",
        "GITHUB_PRIVATE_KEY",
        "GITHUB_PRIVATE_KEY_PATH",
        "GITHUB_TOKEN",
        "GITHUB_API_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refusal(**environment: str) -> str:
    """The one-line description of the error that these settings raise."""
    with pytest.raises(ValidationError) as raised:
        Settings(**environment)
    return describe(raised.value)


def test_defaults() -> None:
    settings = Settings()

    assert settings.database_url == "sqlite://milestones.db"
    assert settings.log_level == "INFO"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://milestones.db",
        "sqlite:///var/lib/milestones/milestones.db",
        "postgres://gate:secret@db.internal:5432/milestones",
    ],
)
def test_supported_database_urls_are_kept_as_given(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    assert Settings().database_url == url


def test_postgresql_scheme_is_rewritten_to_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://gate:secret@db.internal:5432/milestones")

    assert Settings().database_url == "postgres://gate:secret@db.internal:5432/milestones"


def test_only_the_scheme_is_rewritten() -> None:
    settings = Settings(database_url="postgresql://postgresql:pw@postgresql.internal/postgresql")

    assert settings.database_url == "postgres://postgresql:pw@postgresql.internal/postgresql"


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/milestones", "milestones.db", "sqlite://", "sqlite:/milestones.db", ""],
)
def test_unsupported_database_urls_are_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    message = refusal()

    assert message == (
        "configuration error: DATABASE_URL: expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    )
    assert "\n" not in message


@pytest.mark.parametrize("given", ["debug", "Debug", "DEBUG", "warning", "error", "info"])
def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch, given: str) -> None:
    monkeypatch.setenv("LOG_LEVEL", given)

    assert Settings().log_level == given.upper()


def test_unknown_log_level_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "verbose")

    message = refusal()

    assert message.startswith("configuration error: LOG_LEVEL: ")
    assert "'DEBUG'" in message and "'ERROR'" in message


def test_every_bad_setting_is_named_in_one_line() -> None:
    message = refusal(database_url="mysql://x", log_level="loud")

    assert message.startswith(
        "configuration error: DATABASE_URL: expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE; "
        "LOG_LEVEL: "
    )
    assert "\n" not in message


def test_dotenv_in_the_working_directory_is_read(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(
        "DATABASE_URL=postgresql://gate@db.internal/milestones\nLOG_LEVEL=warning\nUNRELATED=ignored\n",
        encoding="utf-8",
    )

    settings = Settings()

    assert settings.database_url == "postgres://gate@db.internal/milestones"
    assert settings.log_level == "WARNING"


def test_environment_variables_win_over_dotenv(monkeypatch: pytest.MonkeyPatch, clean_environment: Path) -> None:
    (clean_environment / ".env").write_text("DATABASE_URL=sqlite://from-dotenv.db\nLOG_LEVEL=error\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", "sqlite://from-environment.db")

    settings = Settings()

    assert settings.database_url == "sqlite://from-environment.db"
    assert settings.log_level == "ERROR"


def test_bad_value_in_dotenv_is_refused(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text("DATABASE_URL=oracle://scott@tiger/db\n", encoding="utf-8")

    assert refusal().startswith("configuration error: DATABASE_URL: ")


def test_github_is_off_by_default() -> None:
    settings = Settings()

    assert settings.github_webhook_secret is None
    assert settings.github_private_key_pem() is None
    assert settings.github_api_url == "https://api.github.com"


def test_an_app_id_needs_a_private_key_and_a_key_needs_an_app_id() -> None:
    assert (
        refusal(github_app_id="12")
        == "configuration error: GITHUB_APP_ID needs GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH"
    )
    assert (
        refusal(github_private_key="-----BEGIN") == "configuration error: a GitHub App private key needs GITHUB_APP_ID"
    )


def test_a_private_key_comes_from_the_variable_with_escaped_newlines_or_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_APP_ID", "12")
    monkeypatch.setenv("GITHUB_PRIVATE_KEY", "-----BEGIN KEY-----\\nabc\\n-----END KEY-----")
    assert Settings().github_private_key_pem() == "-----BEGIN KEY-----\nabc\n-----END KEY-----"

    monkeypatch.delenv("GITHUB_PRIVATE_KEY")
    key_file = tmp_path / "app.pem"
    key_file.write_text("-----BEGIN KEY-----\nfrom file\n")
    monkeypatch.setenv("GITHUB_PRIVATE_KEY_PATH", str(key_file))
    assert Settings().github_private_key_pem() == "-----BEGIN KEY-----\nfrom file\n"
    assert "no such file" in refusal(github_app_id="12", github_private_key_path=str(tmp_path / "missing.pem"))


def test_the_api_url_must_be_http_and_loses_its_trailing_slash() -> None:
    assert (
        Settings(github_api_url="https://github.example.com/api/v3/").github_api_url
        == "https://github.example.com/api/v3"
    )
    assert refusal(github_api_url="github.example.com").startswith(
        "configuration error: GITHUB_API_URL: expected an http(s) URL"
    )
    assert refusal(webhook_workers="0") == "configuration error: WEBHOOK_WORKERS: must be 1 or more"


def test_github_sign_in_needs_its_id_its_secret_and_the_public_url() -> None:
    assert refusal(github_client_id="Iv1.x") == (
        "configuration error: GitHub sign-in needs both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET"
    )
    assert refusal(github_client_id="Iv1.x", github_client_secret="s") == (
        "configuration error: GitHub sign-in (GITHUB_CLIENT_ID) needs PUBLIC_URL, where GitHub sends people back"
    )
    settings = Settings(github_client_id="Iv1.x", github_client_secret="s", public_url="https://ms.example.com/")
    assert (settings.github_web_url, settings.session_hours, settings.access_cache_seconds) == (
        "https://github.com",
        8.0,
        300.0,
    )
