"""Backup benchmark: Seneca's backups side by side with restic on the same lake and Marcus files.

    python benchmarks/backup.py [--data DIR] [--days N] [--scale K] [--keep]

1. Ensures a Marcus sample of >= 1 GB under DIR (default /tmp/backup-bench), written by
   `marcus_sample.write_sample`, and a lake ingested from it (every ingest unit); both are reused
   while DIR/bench_manifest.json matches.
2. Installs restic from Debian's packages when it is missing (for this benchmark only).
3. Both tools, each into its own fresh encrypted repository, over the same set: the lake, the
   Marcus root's data/ and logs/, and the Marcus home. Timed, each as a command in its own
   process (`seneca …` / `restic …`), page cache warmed first so neither pays for the other:
   a first (full) backup; an incremental after one more hour of Marcus data (each live JSONL
   log grows by 1/24 of a day, then ingest runs); a full restore of the latest snapshot into an
   empty directory; and a verify that reads every byte back (`seneca backups verify`,
   `restic check --read-data`). Seneca's restore flushes the file system it wrote (syncfs)
   before it calls itself done, restic's does not: restic's restore is timed with a
   `sync -f` of its target after it. Repository size is bytes on disk after the first backup. Each
   step runs `--rounds` times (3), the tools alternating which goes first; the table shows
   medians, since other work on the machine sways single runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cache import keep, reusable  # noqa: E402
from _table import Row, record  # noqa: E402

DEFAULT_DATA = Path("/tmp/backup-bench")
SEED = 7
PASSWORD = "benchmark password"
MIN_BYTES = 10**9


def tree_bytes(*tops: Path) -> int:
    """Bytes of every file under the given directories."""
    return sum(
        p.stat().st_size for top in tops if top.exists() for p in top.rglob("*") if p.is_file()
    )


def backup_set(data: Path) -> list[Path]:
    """What both tools back up."""
    return [data / "lake", data / "marcus" / "data", data / "marcus" / "logs", data / "marcus_home"]


def ensure_data(data: Path, days: int, scale: float) -> dict[str, Any]:
    """The sample and its lake, made once and reused while the manifest matches."""
    wanted = {"days": days, "scale": scale, "seed": SEED}
    made = reusable(data, wanted)
    if made is not None:
        return made
    sys.path.insert(0, str(ROOT))
    from marcus_sample import write_sample

    began = time.monotonic()
    write_sample(data, days=days, scale=scale, seed=SEED)
    print(f"data: sample written in {time.monotonic() - began:.0f}s")
    began = time.monotonic()
    ingest(data)
    print(f"data: lake ingested in {time.monotonic() - began:.0f}s")
    manifest = {**wanted, "bytes": tree_bytes(*backup_set(data))}
    keep(data, manifest)
    return manifest


def ingest(data: Path) -> None:
    """Every ingest unit once, in a process of its own."""
    code = (
        "from warehouse.ingest.registry import ingest_named, ingest_unit_names\n"
        "from warehouse.settings import load_settings\n"
        "from warehouse.store.catalog import Catalog\n"
        "s = load_settings()\n"
        "with Catalog(s.resolved_catalog_url) as c:\n"
        "    for n in ingest_unit_names(): ingest_named(s, c, n)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=seneca_env(data))


def seneca_env(data: Path) -> dict[str, str]:
    """The environment a `seneca` command of the benchmark runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENECA_")}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        SENECA_LAKE=str(data / "lake"),
        SENECA_MARCUS_ROOT=str(data / "marcus"),
        SENECA_MARCUS_HOME=str(data / "marcus_home"),
        SENECA_BACKUP_URL=str(data / "seneca-repo"),
        SENECA_BACKUP_PASSWORD=PASSWORD,
        RESTIC_REPOSITORY=str(data / "restic-repo"),
        RESTIC_PASSWORD=PASSWORD,
    )
    return env


def ensure_restic() -> str:
    """The restic binary, installed from Debian's packages when missing."""
    found = shutil.which("restic")
    if found:
        return found
    print("restic: installing the Debian package (benchmark only)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "restic"], check=True)
    return shutil.which("restic") or "restic"


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds one command took; it must succeed."""
    began = time.monotonic()
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args[:3])} failed: {done.stderr.strip()[-500:]}")
    return took


def warm(data: Path) -> None:
    """Read every file once, so both tools start from the same page cache."""
    for top in backup_set(data):
        for path in top.rglob("*"):
            if path.is_file():
                with path.open("rb") as handle:
                    while handle.read(16 << 20):
                        pass


def one_more_hour(data: Path, days: int) -> int:
    """Grow each live JSONL log by an hour's share of its size (its own last lines again)."""
    grown = 0
    newest: dict[Path, Path] = {}
    for log in sorted((data / "marcus").rglob("*.jsonl")) + sorted(
        (data / "marcus_home").glob("*.jsonl")
    ):
        newest[log.parent / log.name.split("_")[0]] = log
    for log in newest.values():
        size = log.stat().st_size
        share = size // (days * 24)
        if share == 0:
            continue
        with log.open("rb") as handle:
            handle.seek(max(0, size - share))
            tail = handle.read()
        tail = tail[tail.find(b"\n") + 1 :]
        with log.open("ab") as out:
            out.write(tail)
        grown += len(tail)
    return grown


SENECA = [sys.executable, "-c", "from flows.cli import main; main()"]


def paired(
    results: dict[str, dict[str, list[float]]],
    row: str,
    ours: list[str],
    theirs: list[str],
    env: dict[str, str],
    data: Path,
    round_no: int,
) -> None:
    """Time both commands once, alternating which goes first, from a warm page cache."""
    order = [("seneca", ours), ("restic", theirs)]
    for tool, args in order if round_no % 2 == 0 else order[::-1]:
        warm(data)
        results[tool].setdefault(row, []).append(timed(args, env, data))


def bench(args: argparse.Namespace) -> int:
    """Run both tools through the steps, each step `--rounds` times, and print the medians."""
    data: Path = args.data
    manifest = ensure_data(data, args.days, args.scale)
    if manifest["bytes"] < MIN_BYTES:
        print(f"note: the backup set is {manifest['bytes'] / 1e9:.2f} GB (< 1 GB): raise --scale")
    restic = ensure_restic()
    env = seneca_env(data)
    sources = [str(p.relative_to(data)) for p in backup_set(data)]
    results: dict[str, dict[str, list[float]]] = {"seneca": {}, "restic": {}}
    sizes: dict[str, float] = {}
    grown = 0
    for round_no in range(args.rounds):
        for name in ("seneca-repo", "restic-repo"):
            shutil.rmtree(data / name, ignore_errors=True)
        subprocess.run([restic, "init", "-q"], env=env, check=True, capture_output=True)
        paired(
            results,
            "first backup s",
            [*SENECA, "backup", "--kind", "full"],
            [restic, "backup", "-q", *sources],
            env,
            data,
            round_no,
        )
    sizes["seneca"] = tree_bytes(data / "seneca-repo") / 1e6
    sizes["restic"] = tree_bytes(data / "restic-repo") / 1e6
    for round_no in range(args.rounds):
        grown = one_more_hour(data, args.days)
        ingest(data)
        paired(
            results,
            "incremental s",
            [*SENECA, "backup", "--kind", "incremental"],
            [restic, "backup", "-q", *sources],
            env,
            data,
            round_no,
        )
    latest = json.loads(
        subprocess.run(
            [restic, "snapshots", "--json", "latest"], env=env, capture_output=True, check=True
        ).stdout
    )[0]["short_id"]
    seneca_latest = _seneca_latest(env, data)
    for round_no in range(args.rounds):
        for name in ("restore-seneca", "restore-restic"):
            shutil.rmtree(data / name, ignore_errors=True)
        paired(
            results,
            "restore s",
            [*SENECA, "restore", seneca_latest, "--target", str(data / "restore-seneca")],
            [
                "sh",
                "-c",
                f"{restic} restore -q {latest} --target {data / 'restore-restic'}"
                f" && sync -f {data / 'restore-restic'}",
            ],
            env,
            data,
            round_no,
        )
    for round_no in range(args.rounds):
        paired(
            results,
            "verify s",
            [*SENECA, "backups", "verify"],
            [restic, "check", "-q", "--read-data"],
            env,
            data,
            round_no,
        )

    print()
    print(
        f"backup set: {manifest['bytes'] / 1e9:.2f} GB (lake + Marcus root data/logs + home); "
        f"one more hour: {grown / 1e6:.1f} MB of JSONL, then ingest; median of {args.rounds} rounds"
    )
    print(f"| {'':18} | {'seneca':>8} | {'restic':>8} | {'ratio':>6} |")
    print(f"|{'-' * 20}|{'-' * 10}:|{'-' * 10}:|{'-' * 8}:|")
    table = {
        tool: {row: statistics.median(v) for row, v in rows.items()}
        for tool, rows in results.items()
    }
    for tool in table:
        table[tool]["repository MB"] = sizes[tool]
    for row in ("first backup s", "repository MB", "incremental s", "restore s", "verify s"):
        ours, theirs = table["seneca"][row], table["restic"][row]
        print(f"| {row:18} | {ours:8.1f} | {theirs:8.1f} | {ours / theirs:6.2f} |")
    # Ratios seneca/restic of times and sizes: at most 1 (faster, smaller) is the target.
    targets = {"first backup s": 1.0, "repository MB": 1.1, "incremental s": 1.0, "restore s": 1.0}
    record(
        [
            Row(
                "backup",
                f"{row} vs restic",
                table["seneca"][row] / table["restic"][row],
                "×",
                targets.get(row),
                better="lower",
            )
            for row in ("first backup s", "repository MB", "incremental s", "restore s", "verify s")
        ]
    )
    (data / "results.json").write_text(json.dumps({"runs": results, "sizes_mb": sizes}, indent=2))
    if not args.keep:
        for name in ("seneca-repo", "restic-repo", "restore-seneca", "restore-restic"):
            shutil.rmtree(data / name, ignore_errors=True)
    return 0


def _seneca_latest(env: dict[str, str], data: Path) -> str:
    code = (
        "from warehouse.backup.manifest import load_manifests\n"
        "from warehouse.backup.repository import open_repository\n"
        "from warehouse.settings import load_settings\n"
        "print(load_manifests(open_repository(load_settings()))[-1].name)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=data, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    """Parse the flags and run the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--scale", type=float, default=100.0, help="write_sample scale (≥ 1 GB)")
    parser.add_argument("--rounds", type=int, default=3, help="Times each step runs (median)")
    parser.add_argument("--keep", action="store_true", help="Keep the repositories and restores")
    return bench(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
