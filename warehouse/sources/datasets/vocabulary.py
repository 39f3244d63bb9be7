"""The vocabulary of every declaration: column types, columns, and the roots datasets live under."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa

from warehouse.settings import Settings

ColumnType = Literal["VARCHAR", "BOOLEAN", "DOUBLE", "BIGINT", "JSON"]

# The Marcus roots a declaration's paths are relative to (settings of the same name):
# `marcus_root` is the Marcus checkout / working dir, `marcus_home` its `~/.marcus` dir.
Root = Literal["marcus_root", "marcus_home"]

# The Arrow type a column of each type has in the lake (JSON is kept as its text).
ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "JSON": pa.string(),
}


@dataclass(frozen=True)
class Column:
    """A typed column of a dataset.

    In a JSONL stream it is taken from the first of `paths` present in the record; in a
    SQLite table it is the table's column of the same name (`paths` stays empty).
    """

    name: str
    type: ColumnType
    paths: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class Declaration:
    """What every source declares: its name (its ingest unit), what it is, where it lives."""

    name: str
    description: str
    # Paths of the declaration are relative to this root.
    root: Root


def root_dir(settings: Settings, root: Root) -> Path:
    """The directory a declaration's paths are relative to."""
    return settings.marcus_root if root == "marcus_root" else settings.marcus_home
