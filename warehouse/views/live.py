"""The catalog's live files, grouped once per view build and handed to every view builder."""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.store.catalog import Catalog, FileRecord


@dataclass(frozen=True)
class LiveFiles:
    """The catalog's live files, grouped for view builders."""

    by_dataset: dict[str, list[FileRecord]]
    quarantine: list[FileRecord]

    def data(self, dataset: str) -> list[FileRecord]:
        """Live data files of one dataset (empty when none were committed)."""
        return self.by_dataset.get(dataset, [])


def live_files(catalog: Catalog) -> LiveFiles:
    """The catalog's live files grouped by dataset, quarantine apart."""
    by_dataset: dict[str, list[FileRecord]] = {}
    quarantine: list[FileRecord] = []
    for record in catalog.live_files(kind=None):
        if record.kind == "quarantine":
            quarantine.append(record)
        else:
            by_dataset.setdefault(record.dataset, []).append(record)
    return LiveFiles(by_dataset, quarantine)
