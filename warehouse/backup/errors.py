"""Expected failures of backups, each one line naming the repository, snapshot or file."""

from __future__ import annotations

from warehouse.errors import SenecaError


class BackupError(SenecaError):
    """A backup repository cannot be used, or a snapshot cannot be taken or restored."""


class KeyProblem(BackupError):
    """The repository's key is missing or wrong."""


class RepositoryLocked(BackupError):
    """Another live process holds the repository's lock."""


class DamagedObject(BackupError):
    """An object is missing, or its content does not match its id (corrupt or tampered)."""

    def __init__(self, object_id: str, reason: str) -> None:
        super().__init__(f"object {object_id[:16]}: {reason}")
        self.object_id = object_id
        self.reason = reason
