"""Bad lines of a stream ingest, kept with their source, offset, reason and raw bytes."""

from __future__ import annotations

import hashlib
import re

import duckdb
import pyarrow as pa

from warehouse.sources.jsonl import stream_name
from warehouse.sources.typing_sql import QUARANTINE_SCHEMA
from warehouse.store.catalog import BatchCommit, Catalog
from warehouse.store.lake import Lake
from warehouse.store.write import target, write_table


class QuarantineBuffer:
    """The bad lines of one batch, written as one quarantine file when the batch commits."""

    def __init__(
        self,
        catalog: Catalog,
        lake: Lake,
        dataset: str,
        secret_keys: tuple[str, ...],
        db: duckdb.DuckDBPyConnection,
    ) -> None:
        """Collect bad lines of `dataset`; `db` reads the quarantine already committed."""
        self.catalog = catalog
        self.lake = lake
        self.dataset = dataset
        self.secret_keys = secret_keys
        self.db = db
        self.rows: list[dict[str, object]] = []
        # (stream name, line hash) committed before: the source without its rotation suffix.
        self.known: set[tuple[str, int]] | None = None

    def add(
        self, source: str, offset: int, reason: str, raw: bytes, length: int, rewritten: bool
    ) -> None:
        """Keep one bad line (its first bytes, secrets redacted) unless committed already."""
        raw = redact(raw, self.secret_keys)
        line_hash = int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")
        # A rewritten file is read again from its start: its bad lines may be quarantined already,
        # under this name or another generation's (`x.jsonl` before it became `x.jsonl.gz`).
        if rewritten and (stream_name(source), line_hash) in self._known():
            return
        self.rows.append(
            {
                "dataset": self.dataset,
                "source": source,
                "offset": offset,
                "reason": reason,
                "raw": raw,
                "raw_length": length,
                "_line_hash": line_hash,
            }
        )

    def write(self, batch: BatchCommit) -> int:
        """Write the lines kept so far as one durable file of `batch`; how many there were."""
        if not self.rows:
            return 0
        day = batch.started_at.strftime("%Y-%m-%d")
        for row in self.rows:
            row["_batch_id"] = batch.batch_id
            row["_ingested_at"] = batch.started_at
        table = self._table()
        place = target(self.lake, self.dataset, day, batch.batch_id, kind="quarantine")
        batch.files.append(write_table(self.lake, table, place, "q", ts_column=None))
        batch.quarantined += table.num_rows
        if self.known is not None:
            self.known.update(
                (stream_name(str(r["source"])), int(r["_line_hash"]))  # type: ignore[call-overload]
                for r in self.rows
            )
        self.rows = []
        return int(table.num_rows)

    def _table(self) -> pa.Table:
        """The kept rows as Arrow, built by DuckDB: pyarrow's own builders import pandas."""
        names = QUARANTINE_SCHEMA.names
        cursor = self.db.cursor()  # a session of its own: the temp table ends with it
        try:
            cursor.execute(
                "CREATE TEMP TABLE quarantined (dataset VARCHAR, source VARCHAR, "
                '"offset" BIGINT, reason VARCHAR, raw BLOB, raw_length BIGINT, '
                "_line_hash UBIGINT, _batch_id VARCHAR, _ingested_at TIMESTAMPTZ)"
            )
            cursor.executemany(
                f"INSERT INTO quarantined VALUES ({', '.join('?' * len(names))})",
                [[row[name] for name in names] for row in self.rows],
            )
            table = cursor.sql("FROM quarantined").to_arrow_table()
        finally:
            cursor.close()
        return table.cast(QUARANTINE_SCHEMA)

    def _known(self) -> set[tuple[str, int]]:
        if self.known is None:
            records = self.catalog.live_files(self.dataset, kind="quarantine")
            paths = [self.lake.location(f.path) for f in records]
            rows = (
                self.db.execute(
                    "SELECT source, _line_hash FROM read_parquet(?)", [paths]
                ).fetchall()
                if paths
                else []
            )
            self.known = {(stream_name(r[0]), int(r[1])) for r in rows}
        return self.known


def redact(raw: bytes, secret_keys: tuple[str, ...]) -> bytes:
    """Raw bytes with the values of secret keys replaced, so secrets never reach quarantine."""
    for key in secret_keys:
        raw = re.sub(
            rb'("' + re.escape(key.encode()) + rb'"\s*:\s*)"(?:[^"\\]|\\.)*"?',
            rb'\1"<redacted>"',
            raw,
        )
    return raw
