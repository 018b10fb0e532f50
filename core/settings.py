"""Runtime settings, read once from the environment (and `.env` when present)."""

from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: `.env` and `.data/` live beside the code, wherever a command is run from.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Workspace slugs end up in workflow ids and search attributes.
WORKSPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
#: The public BaseLinker endpoint; every method goes through it.
BASELINKER_ENDPOINT = "https://api.baselinker.com/connector.php"
#: host:port, as Temporal's client takes it.
ADDRESS_PATTERN = r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$"
#: What asyncpg connects to.
DATABASE_URL_PATTERN = r"^postgres(ql)?://"


class Settings(BaseSettings):
    """Every knob of the system; the README's configuration table lists them."""

    model_config = SettingsConfigDict(env_file=PROJECT_ROOT / ".env", extra="ignore")

    workspace: str = Field("loja", pattern=WORKSPACE_PATTERN)
    data_dir: Path = PROJECT_ROOT / ".data"
    database_url: str | None = Field(None, pattern=DATABASE_URL_PATTERN)
    database_pool_size: int = Field(10, ge=1, le=100)

    temporal_address: str = Field("localhost:7233", pattern=ADDRESS_PATTERN)
    temporal_namespace: str = "default"
    temporal_ui_port: int = Field(8233, ge=1, le=65535)
    task_queue: str = "orders"
    baselinker_task_queue: str = "baselinker-api"

    baselinker_url: str = BASELINKER_ENDPOINT
    baselinker_token: SecretStr | None = None
    baselinker_requests_per_minute: int = Field(90, ge=1, le=100)
    baselinker_block_timezone: str = "Europe/Warsaw"
    baselinker_timeout_seconds: float = Field(30.0, gt=0)

    poll_interval_seconds: float = Field(30.0, gt=0, le=3600)
    poll_idle_max_seconds: float = Field(60.0, gt=0, le=3600)
    initial_backfill_days: float = Field(30.0, ge=0, le=3650)
    simulator_port: int = Field(8090, ge=1, le=65535)
    simulator_seed: int = 1
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_json: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("baselinker_block_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {value!r} (an IANA name such as Europe/Warsaw)"
            raise ValueError(msg) from None
        return value

    @model_validator(mode="after")
    def _url_needs_token(self) -> "Settings":
        if self.baselinker_url != BASELINKER_ENDPOINT and not self.baselinker_token:
            msg = "BASELINKER_URL is set without BASELINKER_TOKEN"
            raise ValueError(msg)
        return self

    @property
    def uses_simulator(self) -> bool:
        """No BaseLinker token configured: the local simulator stands in."""
        return self.baselinker_token is None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use."""
    return Settings()
