"""Expectation suites: GX expectation-suite JSON with a severity on every expectation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from warehouse.errors import SenecaError

SUITES_PACKAGE = "expectations"
CROSS_CHECKS = "cross_dataset.json"
SEVERITIES = ("critical", "warning")


class QualityConfigError(SenecaError):
    """A suite or cross-dataset check file is malformed."""


@dataclass(frozen=True)
class Suite:
    """One dataset's expectation suite as loaded from its JSON file."""

    dataset: str
    path: Traversable
    document: dict[str, Any]

    @property
    def options(self) -> dict[str, Any]:
        """The suite's `meta.seneca` block."""
        return dict(self.document.get("meta", {}).get("seneca", {}))

    @property
    def timestamp_column(self) -> str | None:
        """The column checked against the future and bucketed for volume."""
        return self.options.get("timestamp_column")

    @property
    def validate_on(self) -> tuple[str, ...]:
        """Datasets whose new batches trigger this suite (default: its own)."""
        return tuple(self.options.get("validate_on", [self.dataset]))

    @property
    def whole_view(self) -> bool:
        """Whether the suite checks its whole view (a current snapshot) rather than a batch."""
        return bool(self.options.get("scope", "batch") == "view")

    def columns(self) -> list[str]:
        """Every column the suite's expectations refer to, in first-use order."""
        names: list[str] = []
        for expectation in self.document["expectations"]:
            kwargs = expectation.get("kwargs", {})
            found = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
            found += list(kwargs.get("column_list", []))
            for name in found:
                if isinstance(name, str) and name not in names:
                    names.append(name)
        if self.timestamp_column and self.timestamp_column not in names:
            names.append(self.timestamp_column)
        return names


def suites_dir(directory: Traversable | None = None) -> Traversable:
    """`directory`, or the suites installed as package data with the `expectations` package."""
    return files(SUITES_PACKAGE) if directory is None else directory


def load_suites(directory: Traversable | None = None) -> dict[str, Suite]:
    """Every suite under `directory` (default: the installed ones), by dataset.

    Malformed files raise QualityConfigError.
    """
    suites: dict[str, Suite] = {}
    found = [p for p in suites_dir(directory).iterdir() if p.name.endswith(".json")]
    for path in sorted(found, key=lambda p: p.name):
        if path.name == CROSS_CHECKS:
            continue
        document = read_document(path)
        name = document.get("name")
        if name != path.name.removesuffix(".json"):
            raise QualityConfigError(f"{path}: suite name {name!r} must equal the file name")
        expectations = document.get("expectations")
        if not isinstance(expectations, list) or not expectations:
            raise QualityConfigError(f"{path}: no expectations")
        for i, expectation in enumerate(expectations):
            severity = expectation.get("meta", {}).get("severity")
            if severity not in SEVERITIES:
                raise QualityConfigError(
                    f"{path}: expectation {i} ({expectation.get('type')}) has severity "
                    f"{severity!r}; expected one of {', '.join(SEVERITIES)}"
                )
        suites[name] = Suite(name, path, document)
    return suites


def read_document(path: Traversable) -> dict[str, Any]:
    """The JSON object in a suite or check file; anything else raises QualityConfigError."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise QualityConfigError(f"{path}: {exc}") from None
    if not isinstance(document, dict):
        raise QualityConfigError(f"{path}: expected a JSON object")
    return document
