"""Errors Seneca Lake expects and reports as one clear line (no traceback)."""

from __future__ import annotations


class SenecaError(Exception):
    """Base of every expected failure; its message names what is at fault and where."""


class SettingsError(SenecaError):
    """A setting is missing, malformed or points at something unusable."""


class SourceError(SenecaError):
    """A Marcus source (root, file, database) cannot be read."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class SourceGone(SourceError):
    """A source file found by discovery was gone (rotated, replaced or deleted) when opened."""


class CatalogError(SenecaError):
    """The catalog cannot be reached, or a commit was refused."""


class LeaseLost(CatalogError):
    """Another worker took over a dataset's lease before this one committed."""


class LakeError(SenecaError):
    """A file in the lake cannot be written (a full or read-only file system, a lost disk)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class HoldError(SenecaError):
    """A legal hold cannot be added (bad dataset, range or reason) or removed (no such hold)."""
