"""Every setting of every process, from environment variables and an optional `.env`."""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATABASE_SCHEMES = {"sqlite", "postgres", "postgresql"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite://milestones.db"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # GitHub: the webhook secret turns intake on; an App (id + private key) or a
    # token for one repository turns API access on.
    github_webhook_secret: SecretStr | None = None
    github_app_id: int | None = None
    github_private_key: SecretStr | None = None
    github_private_key_path: Path | None = None
    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"

    # Sign-in with GitHub on the web pages: the GitHub App's (or a classic OAuth app's) client id
    # and secret. Without them the overview is off and pages open only with a link's key.
    github_client_id: str | None = None
    github_client_secret: SecretStr | None = None
    github_web_url: str = "https://github.com"
    # Signs and encrypts the web pages' session cookies (default: derived from the webhook secret).
    session_secret: SecretStr | None = None
    session_hours: float = 8.0
    # How long what GitHub said a person may read is trusted before it is asked again.
    access_cache_seconds: float = 300.0

    # Where this service is reached from outside (https://milestones.example.com):
    # check runs link to its milestone pages.
    public_url: str | None = None
    # Gate checks on pull requests: changes settle this long before they are published,
    # so that a burst of them is one update per pull request.
    checks_settle_seconds: float = 5.0

    # Slack: HTTP mode needs the signing secret and the bot token; Socket Mode (no public
    # URL needed) the app-level token and the bot token.
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_command: str = "/milestone"

    # Digests (`milestones clock`): the zone of a subscription that names none (the TZ
    # variable, as the host sets it), and how late a fire missed during downtime may
    # still be sent; older ones are skipped.
    tz: str = "UTC"
    digest_grace_minutes: float = 60.0
    # How long a clock's claim on a fire holds without renewal (renewed every third of it
    # while posting): a clock that died while posting is taken over after this.
    digest_lease_seconds: float = Field(default=60.0, gt=0)

    # Uploads of test reports (POST /api/v1/launches): the most one may carry, as sent and
    # inflated (MB), its files, and the uploads each token may make in a minute.
    upload_max_mb: float = 25.0
    upload_max_files: int = 1000
    upload_rate_limit: int = 60

    # Processing of accepted deliveries.
    webhook_workers: int = 2
    webhook_max_attempts: int = 5
    webhook_retry_seconds: float = 10.0
    # How long a claim on a delivery lasts without renewal: after a crash, how soon
    # another worker takes the delivery over.
    webhook_lease_seconds: float = 60.0

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme, separator, rest = value.partition("://")
        if not separator or scheme not in DATABASE_SCHEMES or not rest:
            raise ValueError("expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        # Heroku-style hosts hand out postgresql://, which Tortoise spells postgres://.
        return "postgres://" + rest if scheme == "postgresql" else value

    @field_validator("github_api_url", "github_web_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s) URL, such as https://milestones.example.com")
        return value.rstrip("/") if value else value

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        from core.zones import ScheduleError, check_zone, looks_like_zone

        value = value.lstrip(":")
        try:
            return check_zone(value)
        except ScheduleError as error:
            if looks_like_zone(value):
                raise ValueError(str(error)) from None
            # A POSIX rule (`CET-1CEST`) is the C library's affair, not an IANA name: digests use UTC.
            return "UTC"

    @field_validator("slack_api_url")
    @classmethod
    def _api_base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s) URL, such as https://slack.com/api/")
        # slack_sdk joins method names onto the base URL as it is.
        return value if value.endswith("/") else value + "/"

    @field_validator("slack_command")
    @classmethod
    def _command_name(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError("expected a slash command such as /milestone (lower case, at most 32 characters)")
        return value

    @field_validator("upload_max_mb")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0")
        return value

    @field_validator("webhook_workers", "webhook_max_attempts", "upload_max_files", "upload_rate_limit")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be 1 or more")
        return value

    @model_validator(mode="after")
    def _app_credentials_complete(self) -> Settings:
        has_key = self.github_private_key is not None or self.github_private_key_path is not None
        if self.github_app_id is not None and not has_key:
            raise ValueError("GITHUB_APP_ID needs GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH")
        if has_key and self.github_app_id is None:
            raise ValueError("a GitHub App private key needs GITHUB_APP_ID")
        if self.github_private_key_path is not None and not self.github_private_key_path.is_file():
            raise ValueError(f"GITHUB_PRIVATE_KEY_PATH: no such file {self.github_private_key_path}")
        return self

    @model_validator(mode="after")
    def _slack_credentials_complete(self) -> Settings:
        if self.slack_bot_token is None:
            if self.slack_signing_secret is not None or self.slack_app_token is not None:
                raise ValueError("Slack needs SLACK_BOT_TOKEN as well")
            return self
        if self.slack_signing_secret is None and self.slack_app_token is None:
            raise ValueError(
                "SLACK_BOT_TOKEN needs SLACK_SIGNING_SECRET (events over HTTP) or SLACK_APP_TOKEN (Socket Mode)"
            )
        if self.slack_app_token is not None and not self.slack_app_token.get_secret_value().startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN: an app-level token starts with xapp-")
        return self

    @model_validator(mode="after")
    def _signin_complete(self) -> Settings:
        if (self.github_client_id is None) != (self.github_client_secret is None):
            raise ValueError("GitHub sign-in needs both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET")
        if self.github_client_id is not None and not self.public_url:
            raise ValueError("GitHub sign-in (GITHUB_CLIENT_ID) needs PUBLIC_URL, where GitHub sends people back")
        return self

    def github_private_key_pem(self) -> str | None:
        if self.github_private_key is not None:
            # Hosts' config screens often keep a PEM on one line with literal \n.
            return self.github_private_key.get_secret_value().replace("\\n", "\n")
        if self.github_private_key_path is not None:
            return self.github_private_key_path.read_text(encoding="utf-8")
        return None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class SettingsError(SystemExit):
    """Stops the program with one line naming the variable and what is wrong."""


def describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        variable = "_".join(str(part) for part in item["loc"]).upper()
        message = item["msg"].removeprefix("Value error, ")
        # A check across several variables names them in its message.
        problems.append(f"{variable}: {message}" if variable else message)
    return "configuration error: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        print(describe(error), file=sys.stderr)
        raise SettingsError(2) from None
