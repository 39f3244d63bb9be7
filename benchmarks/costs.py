"""costs.db benchmark: the first read of 200,000 token events, and a read with nothing new.

    python benchmarks/costs.py [--events 200000] [--profile]

The sample's costs.db (`marcus_sample`, CostStore's schema, both timestamp formats) is grown to
`--events` token events by copying its events with new ids, then `ingest_costs_db` reads it
into a fresh lake (first read: every event typed, written and committed), and once more with
nothing new. Targets: ≥ 200,000 rows/s on the first read, < 0.1 s with nothing new. CPU seconds
count the read's second SQLite reader too, which runs in a process of its own.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from _table import Row, record  # noqa: E402

FIRST_READ_ROWS_PER_S = 200_000
NOTHING_NEW_S = 0.1


def grow_costs_db(path: Path, events: int) -> int:
    """Copy token events (new ids, no request id) until the table holds `events`; the count."""
    conn = sqlite3.connect(path)
    columns = [
        r[1]
        for r in conn.execute("PRAGMA table_xinfo(token_events)")
        if r[5] == 0 and r[6] == 0 and r[1] not in ("event_id", "request_id")  # no pk, generated
    ]
    names = ", ".join(columns)
    have = conn.execute("SELECT count(*) FROM token_events").fetchone()[0]
    while have < events:
        conn.execute(
            f"INSERT INTO token_events ({names}) SELECT {names} FROM token_events "
            f"ORDER BY rowid LIMIT {events - have}"
        )
        have = conn.execute("SELECT count(*) FROM token_events").fetchone()[0]
    conn.commit()
    conn.close()
    return int(have)


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended (a SQLite peer)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the first read")
    args = parser.parse_args(argv)

    from marcus_sample import write_sample
    from warehouse.ingest.costs import ingest_costs_db
    from warehouse.settings import load_settings
    from warehouse.store.catalog import Catalog

    with tempfile.TemporaryDirectory(prefix="seneca-costs-") as tmp:
        sample = write_sample(Path(tmp) / "sample", days=1, scale=1.0)
        events = grow_costs_db(sample.marcus_home / "costs.db", args.events)
        settings = load_settings(
            marcus_root=sample.marcus_root, marcus_home=sample.marcus_home, lake=Path(tmp) / "lake"
        )
        catalog = Catalog(settings.resolved_catalog_url)
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
        began, began_cpu = time.perf_counter(), cpu_seconds()
        first = ingest_costs_db(settings, catalog)
        first_s, first_cpu = time.perf_counter() - began, cpu_seconds() - began_cpu
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=True, show_all=False))
        began = time.perf_counter()
        again = ingest_costs_db(settings, catalog)
        again_s = time.perf_counter() - began
        catalog.dispose()
    if first.errors or first.rows != events or again.rows or again.errors:
        print(f"FAILED: first read {first.rows} rows of {events} {first.errors}; then {again}")
        return 1
    print(
        f"costs.db: {events:,} events in {first_s:.2f} s ({first_cpu:.2f} CPU-s); "
        f"nothing new in {again_s:.3f} s"
    )
    record(
        [
            Row("costs", "token_events first read", events / first_s, "rows/s", 200_000),
            Row("costs", "token_events first read, CPU", first_cpu, "CPU-s"),
            Row("costs", "token_events nothing new", again_s, "s", NOTHING_NEW_S, "lower"),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
