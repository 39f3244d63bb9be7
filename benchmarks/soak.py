"""Soak test: Marcus writing and rotating all five streams while `seneca ingest` is SIGKILLed.

    python benchmarks/soak.py [--minutes 10] [--rate 2200] [--seed 17] [--kill-share 0.3]
                              [--gzip-delay 0] [--lease-seconds 10] [--dir DIR] [--keep]

A writer process appends Marcus-format lines to the five JSONL streams of a Marcus root and
home in a temporary directory at `--rate` lines/s in total (decisions copies included), and
rotates every stream once a minute, staggered: audit at 0:10 (a new day file, the previous one
gzipped by `gzip(1)` at once, as an operator's logrotate without delaycompress would, or
`--gzip-delay` rotations later), agent
events at 0:25 (a new event date, the previous day file gzipped), conversations, decisions and
realtime at 0:40 (a server restart: a new timestamped file of each, plus the empty
conversations/decisions pair a CLI import leaves), telemetry at 0:55 (the live file renamed to
`.jsonl.1` over the older generation, as TelemetryClient does). Meanwhile the real `seneca
ingest` CLI (Prefect's temporary local API, no server, a SQLite catalog in the lake) runs in a
loop with 1–4 s between runs; after the first, `--kill-share` of the runs are SIGKILLed (with
their process group, so their Prefect API server too) after a random delay of up to 1.2 times
the median completed run. When the time is up the writer stops, one last ingest runs
unkilled, and the lake is compared with the writer's ledger:

* per stream, rows + quarantined + dropped duplicates (catalog `batches.duplicates`) must equal
  the lines written;
* lineage: every record's timestamp (unique per stream, to the microsecond) must be in the view
  exactly once, and every bad line must be in `quarantine` once, known by its file (less any
  `.1`/`.gz`) and byte offset;
* lag: for every row, its batch's `committed_at` minus the record's timestamp, which the writer
  takes from the clock as it writes the line; p50/p95/max per stream. The bound it must meet:
  a line is committed by the end of the first ingest run that started after it was written and
  completed (the final run included); lines committed later are counted as `late`.

Telemetry keeps one rotated generation, as TelemetryClient does: a `.1` that is replaced before
any run started after its last lines completed loses those lines at the source. Such lines are
counted apart (`rot.away`), not as missing; a rotation a minute makes this possible here.

The exit status is 1 when a line is missing, doubled or late, a balance is off, or the last
ingest failed.

The data. Every valid line is a line of `marcus_sample` (`write_sample`, days=2, scale=1), the
generator whose formats follow MARCUS_FORMATS.md §2, replayed with a fresh timestamp in the
format its stream uses (isoformat `+00:00`, structlog `Z`); shapes, key order, nesting and line
sizes are the sample's (audit ~2.5 KB with large tool results, conversation ~370 B, realtime
~150 B, agent events ~210 B, telemetry ~190 B), and so is each stream's share of the lines
(realtime the most, telemetry ~2 %). Conversation records at INFO and above are written to the
decisions file too, as Marcus does. Bad lines: 0.5 % of conversation records are the plain-text
lines Marcus's stdlib logging writes into those files ("Kanban sync lagging: …" into both
files, "Retrying board fetch in …" into conversations only), and 0.05 % of audit, realtime and
agent event lines are crash remnants (a record cut at two thirds, then a newline). Unlike real
Marcus: time runs about a thousand times faster for rotation (a "day" file lasts a minute), the
records do not tell one consistent story (ids do not join across streams), telemetry has no bad
lines, no line is left partial at the end of a file, and the legacy naive-timestamp audit lines
are left out (their one-second timestamps cannot serve as unique keys).

Everything lives under one temporary directory (`--dir`, default the system's), removed at the
end unless --keep. No network: Prefect runs its local API on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soak_writer import LEDGER_COLUMNS, STREAMS, load_templates

ROOT = Path(__file__).resolve().parents[1]
SENECA = str(Path(sys.executable).with_name("seneca"))


# --- the ingest runs ---------------------------------------------------------------------------


@dataclass
class IngestRun:
    """One `seneca ingest` process: when, how long, and how it ended."""

    pid: int
    wall: float  # time.time() at its start
    seconds: float
    killed: bool
    returncode: int | None
    log: Path


@dataclass
class Soak:
    """Paths and environment of one soak."""

    base: Path
    root: Path = field(init=False)
    home: Path = field(init=False)
    lake: Path = field(init=False)
    prefect_home: Path = field(init=False)
    logs: Path = field(init=False)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Lay out the temporary directory."""
        self.root, self.home = self.base / "marcus", self.base / "marcus_home"
        self.lake, self.prefect_home = self.base / "lake", self.base / "prefect"
        self.logs = self.base / "runs"
        self.logs.mkdir()

    def seneca(self, *args: str, log: Path, new_session: bool = False) -> subprocess.Popen[bytes]:
        """Start the real `seneca` CLI of this checkout."""
        with log.open("wb") as out:
            return subprocess.Popen(
                [SENECA, *args],
                env=self.env,
                cwd=self.base,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=new_session,
            )

    def ingest(self, number: int, kill_after: float | None) -> IngestRun:
        """One `seneca ingest` of the five streams, SIGKILLed after `kill_after` seconds."""
        log = self.logs / f"ingest-{number:04d}.log"
        picked = [arg for name in STREAMS for arg in ("-d", name)]
        places = ["--lake", str(self.lake), "--marcus-root", str(self.root)]
        places += ["--marcus-home", str(self.home)]
        wall, began = time.time(), time.monotonic()
        process = self.seneca("ingest", *picked, *places, log=log, new_session=True)
        killed = False
        try:
            process.wait(timeout=kill_after if kill_after is not None else 900)
        except subprocess.TimeoutExpired:
            # The whole group: Prefect's local API server dies with the run, as on a crash.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            self.kill_leftovers()
            killed = True
        seconds = time.monotonic() - began
        code = None if killed else process.returncode
        return IngestRun(process.pid, wall, seconds, killed, code, log)

    def kill_leftovers(self) -> list[int]:
        """SIGKILL processes started by our runs that left their group (found by PREFECT_HOME)."""
        marker = f"PREFECT_HOME={self.prefect_home}".encode()
        killed = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if marker in environ.read_bytes().split(b"\0"):
                    os.kill(int(environ.parent.name), signal.SIGKILL)
                    killed.append(int(environ.parent.name))
            except (OSError, ValueError):
                continue
        return killed

    def sql_to_parquet(self, query: str, out: Path) -> None:
        """`seneca sql … --format parquet --out FILE`, failing loudly."""
        log = self.logs / f"sql-{out.stem}.log"
        args = ["sql", "--lake", str(self.lake), "--format", "parquet", "--out", str(out), query]
        if self.seneca(*args, log=log).wait(timeout=600) != 0:
            raise SystemExit(f"error: seneca sql failed:\n{log.read_text()}")


def soak_env(soak: Soak, lease_seconds: int) -> dict[str, str]:
    """The runs' environment: this checkout first, no inherited Prefect or Seneca settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "SENECA_")) and k not in ("COLUMNS", "LINES")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PREFECT_HOME"] = str(soak.prefect_home)
    # A killed run's leases live lease_seconds; the next run waits them out instead of skipping.
    env["SENECA_LEASE_SECONDS"] = str(lease_seconds)
    env["SENECA_LEASE_WAIT_SECONDS"] = str(lease_seconds + 5)
    return env


def drive(args: argparse.Namespace, soak: Soak, writer: subprocess.Popen[bytes]) -> list[IngestRun]:
    """Run ingest in a loop, killing some runs, until the soak's time is up."""
    rng = random.Random(args.seed)
    runs: list[IngestRun] = []
    end = time.monotonic() + args.minutes * 60
    while time.monotonic() < end:
        if writer.poll() is not None:
            raise SystemExit(f"error: the writer stopped early (exit {writer.returncode})")
        completed = [r.seconds for r in runs if not r.killed]
        typical = statistics.median(completed) if completed else 20.0
        kill = runs and rng.random() < args.kill_share
        run = soak.ingest(len(runs) + 1, rng.uniform(0.2, 1.2 * typical) if kill else None)
        runs.append(run)
        how = "killed" if run.killed else f"exit {run.returncode}"
        print(f"  ingest {len(runs):3d}: {run.seconds:5.1f} s, {how}", flush=True)
        time.sleep(min(rng.uniform(1, 4), max(0.0, end - time.monotonic())))
    return runs


# --- the comparison ----------------------------------------------------------------------------


def lake_tables(soak: Soak, con: Any) -> None:
    """Load the lake's keys, its quarantine and the catalog's batches into `con`."""
    keys = " UNION ALL ".join(
        f"SELECT '{name}' AS dataset, epoch_us(ts) AS us, _source, _offset, _batch_id FROM {name}"
        for name in STREAMS
    )
    soak.sql_to_parquet(keys, soak.base / "lake_keys.parquet")
    quarantine = 'SELECT dataset, source, "offset", _batch_id FROM quarantine'
    soak.sql_to_parquet(quarantine, soak.base / "lake_quarantine.parquet")
    con.execute(f"CREATE TABLE lake AS FROM '{soak.base / 'lake_keys.parquet'}'")
    con.execute(
        "CREATE TABLE quar AS SELECT dataset, regexp_replace(source, '(\\.1)?(\\.gz)?$', '') "
        f"AS file, \"offset\" FROM '{soak.base / 'lake_quarantine.parquet'}'"
    )
    catalog = sqlite3.connect(f"file:{soak.lake / 'catalog.db'}?mode=ro", uri=True)
    batches = catalog.execute(
        "SELECT id, dataset, committed_at, duplicates, worker FROM batches"
    ).fetchall()
    catalog.close()
    con.execute(
        "CREATE TABLE batches (id VARCHAR, dataset VARCHAR, committed_at TIMESTAMP, "
        "duplicates BIGINT, worker VARCHAR)"
    )
    con.executemany("INSERT INTO batches VALUES (?, ?, ?, ?, ?)", batches)


PREPARE = """
CREATE TABLE lagged AS
    SELECT lake.dataset, lake.us, epoch_us(b.committed_at) AS committed,
           (SELECT min(r.ended) FROM runs r WHERE r.completed AND r.began > lake.us) AS due
    FROM lake JOIN batches b ON b.id = lake._batch_id;
CREATE TABLE missing AS
    SELECT m.*, coalesce(m.dataset = 'telemetry_events' AND NOT EXISTS (
               FROM runs r WHERE r.completed AND r.began > m.us AND r.ended < o.replaced), false)
           AS rotated_away
    FROM (FROM ledger l WHERE kind = 'row' AND NOT EXISTS (
              FROM lake WHERE lake.dataset = l.dataset AND lake.us = l.us)
          UNION ALL
          FROM ledger l WHERE kind = 'bad' AND NOT EXISTS (
              FROM quar q WHERE q.dataset = l.dataset AND q.file = l.file
              AND q."offset" = l."offset")) m
    LEFT JOIN overwritten o ON m.dataset = 'telemetry_events' AND o.gen = m.gen;
"""

COMPARE = """
WITH w AS (SELECT dataset, count(*) AS written FROM ledger GROUP BY ALL),
     r AS (SELECT dataset, count(*) AS rows, count(*) - count(DISTINCT us) AS doubled
           FROM lake GROUP BY ALL),
     q AS (SELECT dataset, count(*) AS quarantined,
                  count(*) - count(DISTINCT (file, "offset")) AS doubled FROM quar GROUP BY ALL),
     d AS (SELECT dataset, sum(duplicates) AS duplicates FROM batches GROUP BY ALL),
     m AS (SELECT dataset, count(*) FILTER (NOT rotated_away) AS missing,
                  count(*) FILTER (rotated_away) AS rotated_away FROM missing GROUP BY ALL),
     extra AS (SELECT dataset, count(*) AS extra FROM (
                SELECT dataset, us FROM lake EXCEPT SELECT dataset, us FROM ledger) GROUP BY ALL),
     lag AS (SELECT dataset, quantile_cont(s, 0.5) AS p50, quantile_cont(s, 0.95) AS p95,
                    max(s) AS max, count(*) FILTER (committed > due) AS late
             FROM (SELECT *, (committed - us) / 1e6 AS s FROM lagged) GROUP BY ALL)
SELECT w.dataset, written, coalesce(rows, 0), coalesce(quarantined, 0),
       coalesce(duplicates, 0), coalesce(rotated_away, 0), coalesce(missing, 0),
       coalesce(r.doubled, 0) + coalesce(q.doubled, 0), coalesce(extra, 0), p50, p95, max,
       coalesce(late, 0)
FROM w LEFT JOIN r USING (dataset) LEFT JOIN q USING (dataset) LEFT JOIN d USING (dataset)
LEFT JOIN m USING (dataset) LEFT JOIN extra USING (dataset) LEFT JOIN lag USING (dataset)
ORDER BY w.dataset
"""

OVERALL = """
SELECT quantile_cont(s, 0.5), quantile_cont(s, 0.95), max(s), max(allowed)
FROM (SELECT (committed - us) / 1e6 AS s, (due - us) / 1e6 AS allowed FROM lagged)
"""


def compare(
    soak: Soak, ledger: Path, runs: list[IngestRun], overwritten: dict[str, float]
) -> tuple[list[tuple[Any, ...]], tuple[Any, ...], Any]:
    """Per stream: written vs the lake, missing, doubled, lag; the overall lag; the session."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE ledger AS FROM read_csv(?, header = false, columns = "
        + "{"
        + ", ".join(f"'{k}': '{v}'" for k, v in LEDGER_COLUMNS.items())
        + "})",
        [str(ledger)],
    )
    lake_tables(soak, con)
    # Run times and replacement times in epoch microseconds, like the records' timestamps.
    con.execute("CREATE TABLE runs (began BIGINT, ended BIGINT, completed BOOLEAN)")
    con.executemany(
        "INSERT INTO runs VALUES (?, ?, ?)",
        [(int(r.wall * 1e6), int((r.wall + r.seconds) * 1e6), r.returncode == 0) for r in runs],
    )
    con.execute("CREATE TABLE overwritten (gen INTEGER, replaced BIGINT)")
    con.executemany(
        "INSERT INTO overwritten VALUES (?, ?)",
        [(int(g), int(at * 1e6)) for g, at in overwritten.items()],
    )
    con.execute(PREPARE)
    table = con.execute(COMPARE).fetchall()
    overall = con.execute(OVERALL).fetchone()
    assert overall is not None
    return table, overall, con


def missing_detail(con: Any, limit: int = 12) -> list[str]:
    """Where the missing lines were: file, generation, offsets, first and last timestamp."""
    rows = con.execute(
        f"""
        SELECT dataset, file, gen, kind, rotated_away, count(*), min("offset"), max("offset"),
               make_timestamp(min(us)), make_timestamp(max(us))
        FROM missing GROUP BY ALL ORDER BY 1, 2 LIMIT {limit}"""
    ).fetchall()
    return [
        f"  {d}: {n:,} {k} line(s) of {f} (generation {g}) at bytes {lo:,}–{hi:,}, "
        f"written {first:%H:%M:%S.%f}–{last:%H:%M:%S.%f} UTC"
        + (" (rotated away unread: no ingest ran to completion in between)" if away else "")
        for d, f, g, k, away, n, lo, hi, first, last in rows
    ]


def doubled_detail(con: Any, limit: int = 12) -> list[str]:
    """Which records the lake holds more than once, and from where."""
    rows = con.execute(
        f"""
        SELECT dataset, make_timestamp(us), count(*), string_agg(_source || '@' || _offset, ', ')
        FROM lake GROUP BY dataset, us HAVING count(*) > 1 ORDER BY 1, 2 LIMIT {limit}"""
    ).fetchall()
    return [f"  {d}: record of {ts} ×{n}: {where}" for d, ts, n, where in rows]


def report(
    args: argparse.Namespace,
    runs: list[IngestRun],
    final: IngestRun,
    written: dict[str, Any],
    table: list[tuple[Any, ...]],
    overall: tuple[Any, ...],
    con: Any,
) -> int:
    """Print the soak's table; 1 if a line is missing or doubled or a balance is off."""
    killed = [r for r in runs if r.killed]
    failed = [r for r in runs if not r.killed and r.returncode != 0]
    committing = {
        int(w.split(":")[1])
        for (w,) in con.execute("SELECT DISTINCT worker FROM batches").fetchall()
    }
    killed_after_commit = sum(1 for r in killed if r.pid in committing)
    completed = [r.seconds for r in runs if not r.killed]
    print()
    print(
        f"soak: {written['seconds'] / 60:.1f} min, seed {args.seed}, kill share {args.kill_share},"
        f" rotation every 60 s, gzip delay {args.gzip_delay},"
        f" SENECA_LEASE_SECONDS={args.lease_seconds}"
    )
    print(
        f"writer: {written['lines']:,} lines at {written['rate']:,.0f} lines/s "
        f"(target {args.rate:,.0f}); rotations: "
        + ", ".join(f"{d} {n}" for d, n in written["rotations"].items())
    )
    print(
        f"ingest runs: {len(runs)} ({len(runs) - len(killed) - len(failed)} completed, "
        f"{len(failed)} failed, {len(killed)} SIGKILLed, {killed_after_commit} of them after "
        f"committing a batch); completed run time p50 "
        f"{statistics.median(completed) if completed else 0:.1f} s, max "
        f"{max(completed, default=0):.1f} s; final ingest {final.seconds:.1f} s, "
        f"exit {final.returncode}"
    )
    print()
    head = (
        f"{'stream':<20} {'written':>9} {'rows':>9} {'quarant.':>8} {'dups':>7} {'rot.away':>8} "
        f"{'missing':>7} {'doubled':>7} {'extra':>5} {'balance':>7} {'lag p50':>8} {'p95':>7} "
        f"{'max':>7} {'late':>5}"
    )
    print(head)
    print("-" * len(head))
    problems: list[str] = []
    sums = [0] * 9
    for name, wrote, rows, quar, dups, away, miss, doubled, extra, p50, p95, top, late in table:
        balance = rows + quar + dups + away - wrote
        for i, value in enumerate((wrote, rows, quar, dups, away, miss, doubled, extra, late)):
            sums[i] += value
        print(
            f"{name:<20} {wrote:>9,} {rows:>9,} {quar:>8,} {dups:>7,} {away:>8,} {miss:>7,} "
            f"{doubled:>7,} {extra:>5,} {balance:>+7,} {p50 or 0:>7.1f}s {p95 or 0:>6.1f}s "
            f"{top or 0:>6.1f}s {late:>5,}"
        )
        if miss or doubled or extra or balance or late:
            problems.append(
                f"{name}: {miss:,} missing, {doubled:,} doubled, {extra:,} unknown, "
                f"balance {balance:+,}, {late:,} committed after their bound"
            )
    print("-" * len(head))
    wrote, rows, quar, dups, away, miss, doubled, extra, late = sums
    p50, p95, top, allowed = (v or 0.0 for v in overall)
    print(
        f"{'total':<20} {wrote:>9,} {rows:>9,} {quar:>8,} {dups:>7,} {away:>8,} {miss:>7,} "
        f"{doubled:>7,} {extra:>5,} {rows + quar + dups + away - wrote:>+7,} {p50:>7.1f}s "
        f"{p95:>6.1f}s {top:>6.1f}s {late:>5,}"
    )
    print()
    print(
        f"lag = batch committed_at − record timestamp (written from the clock), over every row:"
        f" p50 {p50:.1f} s, p95 {p95:.1f} s, max {top:.1f} s."
    )
    print(
        "bound: every line is committed by the end of the first ingest run that started after"
        f" it was written and completed (here at most {allowed:.1f} s after the write);"
        f" {late:,} line(s) later than that."
    )
    if away:
        print(
            f"rot.away: {away:,} telemetry line(s) whose `.1` generation Marcus replaced before"
            " any ingest started after them had completed (one generation kept): lost at the"
            " source, not by Seneca."
        )
    if final.returncode != 0:
        problems.append(f"the final ingest exited {final.returncode} (see {final.log.name})")
    if miss:
        print("missing lines:")
        print("\n".join(missing_detail(con)))
    if doubled:
        print("doubled records:")
        print("\n".join(doubled_detail(con)))
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print("OK: the lake holds every line written, once")
    return 1 if problems else 0


def soak(args: argparse.Namespace) -> int:
    """Set up, write and ingest for --minutes, stop, ingest once more, compare and report."""
    base = Path(tempfile.mkdtemp(prefix="seneca-soak-", dir=args.dir))
    soak_dirs = Soak(base)
    soak_dirs.env = soak_env(soak_dirs, args.lease_seconds)
    writer: subprocess.Popen[bytes] | None = None
    try:
        print(f"soak in {base}: templates from marcus_sample ...", flush=True)
        templates = load_templates(base / "template", args.seed)
        job = {
            "seed": args.seed,
            "root": str(soak_dirs.root),
            "home": str(soak_dirs.home),
            "ledger": str(base / "ledger.csv"),
            "rate": args.rate,
            "gzip_delay": args.gzip_delay,
            "max_seconds": args.minutes * 60 + 3600,  # a backstop; the driver stops it
            "templates": {k: [t.__dict__ for t in v] for k, v in templates.items()},
        }
        job_path = base / "writer.json"
        job_path.write_text(json.dumps(job))
        shutil.rmtree(base / "template")
        writer = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("soak_writer.py")), str(job_path)],
            # Not the runs' PREFECT_HOME: that marks the processes kill_leftovers may end.
            env={k: v for k, v in soak_dirs.env.items() if k != "PREFECT_HOME"},
        )
        print(
            f"writing {args.rate:,.0f} lines/s for {args.minutes:g} min; seneca ingest in a loop",
            flush=True,
        )
        runs = drive(args, soak_dirs, writer)
        writer.send_signal(signal.SIGTERM)
        if writer.wait(timeout=300) != 0:
            raise SystemExit(f"error: the writer failed (exit {writer.returncode})")
        written = json.loads(job_path.with_suffix(".out.json").read_text())
        print("writer stopped; final ingest ...", flush=True)
        final = soak_dirs.ingest(len(runs) + 1, None)
        # The runs as they went, for a look at the kept directory afterwards.
        (base / "runs.json").write_text(
            json.dumps([r.__dict__ for r in (*runs, final)], default=str)
        )
        table, overall, con = compare(
            soak_dirs, base / "ledger.csv", [*runs, final], written["overwritten"]
        )
        return report(args, runs, final, written, table, overall, con)
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
            writer.wait()
        soak_dirs.kill_leftovers()
        if args.keep:
            print(f"kept: {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long to write and ingest")
    parser.add_argument("--rate", type=float, default=2200, help="lines/s over all five streams")
    parser.add_argument("--seed", type=int, default=17, help="seeds the data and the kills")
    parser.add_argument("--kill-share", type=float, default=0.3, help="share of runs SIGKILLed")
    parser.add_argument(
        "--lease-seconds",
        type=int,
        default=10,
        help="SENECA_LEASE_SECONDS of the runs (a killed run's leases block this long)",
    )
    parser.add_argument(
        "--gzip-delay",
        type=int,
        default=0,
        help="rotations before a finished audit/agent-events day file is gzipped (0: at once)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parse(argv)
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())
