"""What the retention planner decides and the executor applies: one frozen value per action.

Every action names the files it reads by their catalog facts (`FileFact`), so the executor can
refuse one whose files changed since the plan, and the log can say what moved where.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class FileFact:
    """One live catalog file as the planner sees it."""

    path: str  # lake-relative for hot and warm, a URL (or absolute path) for cold and archive
    dataset: str
    kind: str  # data | quarantine | rollup
    tier: str  # hot | warm | cold | archive
    partition: str  # YYYY-MM-DD, YYYY-MM (a compacted month, daily rollups) or YYYY
    rows: int
    bytes: int
    sha256: str
    batch_id: str


@dataclass(frozen=True)
class HoldWindow:
    """A legal hold: no file of `dataset` ("*": any) touching [since, until) is deleted."""

    dataset: str
    since: dt.datetime
    until: dt.datetime


@dataclass(frozen=True)
class Action:
    """Base of every action: the dataset, its kind of files, and the files it reads."""

    dataset: str
    kind: str
    files: tuple[FileFact, ...]

    @property
    def rows(self) -> int:
        """Rows of the files the action reads."""
        return sum(f.rows for f in self.files)

    @property
    def bytes(self) -> int:
        """Bytes of the files the action reads."""
        return sum(f.bytes for f in self.files)

    @property
    def tier_from(self) -> str:
        """The tier the action takes its files from."""
        return self.files[0].tier if self.files else "-"

    @property
    def tier_to(self) -> str:
        """The tier the action puts its output in ("deleted" for deletions)."""
        return self.tier_from

    @property
    def what(self) -> str:
        """The action's name in plans and the retention log."""
        return type(self).__name__.lower()


@dataclass(frozen=True)
class Compact(Action):
    """Hot files of a closed day (or warm day files of a small month) → one sorted warm file."""

    partition: str = ""  # the output's partition: a day, or a month

    @property
    def tier_to(self) -> str:
        """Compacted files are warm."""
        return "warm"


@dataclass(frozen=True)
class Upload(Action):
    """A warm file copied to the cold store, verified, then retired locally."""

    @property
    def tier_to(self) -> str:
        """Uploaded files are cold."""
        return "cold"


@dataclass(frozen=True)
class Archive(Action):
    """A cold file copied to the archive store, verified, then retired from cold."""

    @property
    def tier_to(self) -> str:
        """Archived files are out of the default views."""
        return "archive"


@dataclass(frozen=True)
class Delete(Action):
    """Files past their dataset's age of deletion (or rollup files past theirs), retired."""

    reason: str = "expired"

    @property
    def tier_to(self) -> str:
        """Nothing is left."""
        return "deleted"


@dataclass(frozen=True)
class DeleteRows(Action):
    """Rows matching a row rule removed from the files of one day: each file rewritten."""

    rule: str = ""
    predicate: str = ""  # DuckDB SQL over the file's columns: rows to remove

    @property
    def tier_to(self) -> str:
        """Rewritten files stay in their tier."""
        return self.tier_from


ACTION_ORDER = (DeleteRows, Delete, Compact, Upload, Archive)
