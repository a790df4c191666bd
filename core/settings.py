"""Every setting of every process, from environment variables and an optional `.env`."""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATABASE_SCHEMES = {"sqlite", "postgres", "postgresql"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite://milestones.db"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme, separator, rest = value.partition("://")
        if not separator or scheme not in DATABASE_SCHEMES or not rest:
            raise ValueError(
                "expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        # Heroku-style hosts hand out postgresql://, which Tortoise spells postgres://.
        return "postgres://" + rest if scheme == "postgresql" else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class SettingsError(SystemExit):
    """Stops the program with one line naming the variable and what is wrong."""


def describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        variable = "_".join(str(part) for part in item["loc"]).upper() or "settings"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{variable}: {message}")
    return "configuration error: " + "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        print(describe(error), file=sys.stderr)
        raise SettingsError(2) from None
