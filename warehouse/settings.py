"""Settings: one pydantic-settings class, read from flags, `SENECA_*` variables and seneca.toml."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from warehouse.errors import SettingsError


class Settings(BaseSettings):
    """Where Marcus writes, where the lake lives, and how ingestion behaves."""

    model_config = SettingsConfigDict(
        env_prefix="SENECA_",
        toml_file="seneca.toml",
        extra="forbid",
    )

    marcus_root: Path = Field(
        default=Path("."), description="Marcus checkout / working directory (holds data/ and logs/)"
    )
    marcus_home: Path = Field(
        default=Path.home() / ".marcus", description="Marcus's ~/.marcus directory"
    )
    lake: Path = Field(default=Path("lake"), description="Root directory of the lake")
    catalog_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog; default sqlite:///<lake>/catalog.db",
    )
    max_line_bytes: int = Field(
        default=8 << 20, gt=0, description="Longer JSONL lines are quarantined as oversized"
    )
    chunk_bytes: int = Field(
        default=16 << 20, gt=0, description="Bytes of input parsed and written per step"
    )
    commit_bytes: int = Field(
        default=512 << 20, gt=0, description="Input bytes between intermediate catalog commits"
    )
    lease_seconds: int = Field(default=300, gt=0, description="Lifetime of a dataset lease")
    lease_wait_seconds: float = Field(
        default=120.0, ge=0, description="How long to wait for a dataset another worker holds"
    )
    costs_recheck_rows: int = Field(
        default=10_000,
        ge=0,
        description="costs.db token_events rows below the rowid watermark re-read each run for "
        "task_id/tool_intent that CostStore fills in late (0: never)",
    )
    retired_grace_minutes: float = Field(
        default=60,
        ge=0,
        description="Retired lake files stay at least this long, for readers that cannot pin",
    )
    duckdb_memory_limit: str = Field(default="1GB", description="DuckDB memory limit for jobs")
    freshness_warn_minutes: float = Field(
        default=60, gt=0, description="Status warns past this lag of a dataset's newest record"
    )
    freshness_critical_minutes: float = Field(
        default=360, gt=0, description="Status flags a dataset critical past this lag"
    )
    freshness_overrides: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description='Per-dataset [warn, critical] minutes, e.g. {"telemetry_events": [1440, 4320]}',
    )
    task_runner: Literal["threads", "dask"] = Field(
        default="threads", description="Runner of partition-parallel tasks (dask: prefect-dask)"
    )
    dask_address: str | None = Field(
        default=None, description="Dask scheduler for task_runner=dask; default: a local cluster"
    )

    now: dt.datetime | None = Field(
        default=None,
        description="The time policy-driven commands act at (retention, status, backups); "
        "default: the clock. For tests, demos and replaying years of policy",
    )
    retention: dict[str, dict[str, int | None]] = Field(
        default_factory=dict,
        description="Retention ages in days over the defaults, per dataset (or quarantine, "
        'default, dataset:rule), e.g. {"telemetry_events": {"delete": 120}}',
    )
    cold_url: str | None = Field(
        default=None,
        description="Cold tier: s3://bucket/prefix or a local directory; default <lake>/cold",
    )
    archive_url: str | None = Field(
        default=None,
        description="Archive, outside default views: s3://… or a directory; default <cold>/archive",
    )
    archive_storage_class: str | None = Field(
        default=None,
        description="S3 storage class of archived objects (e.g. GLACIER_IR); default: the bucket's",
    )

    @field_validator("now", mode="after")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        # A naive time is read as UTC, like every time Marcus writes.
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=dt.UTC)

    def current_time(self) -> dt.datetime:
        """`now` if set (flag, SENECA_NOW or seneca.toml), else the clock, in UTC."""
        return self.now if self.now is not None else dt.datetime.now(dt.UTC)

    @field_validator("marcus_root", "marcus_home", "lake", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        # Absolute from the start: views in seneca.duckdb, GX Data Docs and served flow runs
        # must not depend on the directory they happen to run in.
        return value.expanduser().absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags win over the environment, which wins over seneca.toml."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_catalog_url(self) -> str:
        """The catalog URL, defaulting to a SQLite file inside the lake."""
        if self.catalog_url:
            return self.catalog_url
        return f"sqlite:///{self.lake.resolve() / 'catalog.db'}"

    @property
    def resolved_cold_url(self) -> str:
        """The cold tier's URL, defaulting to the directory `cold` inside the lake."""
        return self.cold_url or str(self.lake / "cold")

    @property
    def resolved_archive_url(self) -> str:
        """The archive's URL, defaulting to `archive` under the cold tier's."""
        return self.archive_url or f"{self.resolved_cold_url.rstrip('/')}/archive"


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from flags (None means "not given"), the environment and seneca.toml."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
