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
