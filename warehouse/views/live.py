"""The catalog's live files, grouped once per view build and handed to every view builder."""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.store.catalog import Catalog, FileRecord


@dataclass(frozen=True)
class LiveFiles:
    """The catalog's live files, grouped for view builders."""

    by_dataset: dict[str, list[FileRecord]]
    quarantine: list[FileRecord]

    @property
    def paths(self) -> list[str]:
        """Every file's catalog path (lake-relative, or a URL in object storage)."""
        records = [r for rs in self.by_dataset.values() for r in rs] + self.quarantine
        return [r.path for r in records]

    def data(self, dataset: str) -> list[FileRecord]:
        """Live data files of one dataset (empty when none were committed)."""
        return self.by_dataset.get(dataset, [])


def live_files(catalog: Catalog, include_archive: bool = False) -> LiveFiles:
    """The catalog's live files grouped by dataset, quarantine apart.

    Archived files are left out unless asked for: the archive is outside the default views.
    """
    by_dataset: dict[str, list[FileRecord]] = {}
    quarantine: list[FileRecord] = []
    for record in catalog.live_files(kind=None):
        if record.tier == "archive" and not include_archive:
            continue
        if record.kind == "quarantine":
            quarantine.append(record)
        else:
            by_dataset.setdefault(record.dataset, []).append(record)
    return LiveFiles(by_dataset, quarantine)
