"""Leases: a dead holder of this host is replaced at once, long work keeps its lease renewed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from warehouse.settings import Settings, load_settings
from warehouse.store.catalog import Catalog, leases
from warehouse.store.commit import commit, holding_lease, new_batch
from warehouse.store.lake import Lake
from warehouse.store.workers import is_dead_here, parse_worker, worker_id
from warehouse.store.write import target, write_table

from .test_commit import DATASET, T0, table

pytestmark = pytest.mark.unit

NAME = f"ingest:{DATASET}"

# A worker that takes a lease of 300 s, then is killed by SIGKILL holding it.
KILLED_HOLDER = """
import os, signal, sys
from warehouse.store.catalog import Catalog
from warehouse.store.commit import worker_id
catalog = Catalog(sys.argv[1])
me = worker_id()
assert catalog.acquire_lease(sys.argv[2], me, 300)
print(me, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""

# A worker that takes a lease of 300 s and keeps running.
LIVE_HOLDER = """
import sys, time
from warehouse.store.catalog import Catalog
from warehouse.store.commit import worker_id
catalog = Catalog(sys.argv[1])
me = worker_id()
assert catalog.acquire_lease(sys.argv[2], me, 300)
print(me, flush=True)
time.sleep(600)
"""


def settings_for(tmp_path: Path, lease_seconds: int = 300, wait: float = 0) -> Settings:
    return load_settings(
        lake=tmp_path / "lake",
        marcus_root=tmp_path / "marcus",
        marcus_home=tmp_path / "home",
        lease_seconds=lease_seconds,
        lease_wait_seconds=wait,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


def child_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[3])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def killed_holder(catalog: Catalog, name: str = NAME) -> str:
    """The worker name of a process that took `name` for 300 s and was then killed."""
    done = subprocess.run(
        [sys.executable, "-c", KILLED_HOLDER, catalog.url, name],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.stdout.strip()


@pytest.fixture
def live_holder(catalog: Catalog) -> Iterator[str]:
    """The worker name of a running process that holds the lease for 300 s."""
    child = subprocess.Popen(
        [sys.executable, "-c", LIVE_HOLDER, catalog.url, NAME],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        child.kill()
        child.wait()


def holder(catalog: Catalog) -> str | None:
    with catalog.engine.connect() as conn:
        return conn.execute(sa.select(leases.c.owner).where(leases.c.name == NAME)).scalar()


def test_worker_names_carry_the_process_start(settings: Settings) -> None:
    name = parse_worker(worker_id())
    assert name is not None
    assert (name.host, name.pid) == (socket.gethostname(), os.getpid())
    assert name.start  # this is Linux: /proc says when the process started
    assert not is_dead_here(worker_id())  # this process, under any random suffix


def test_a_lease_of_a_killed_process_on_this_host_is_taken_over_at_once(
    settings: Settings, catalog: Catalog
) -> None:
    dead = killed_holder(catalog)
    assert holder(catalog) == dead

    with holding_lease(settings, catalog, DATASET, "w-new") as run:
        assert run.lease is not None
        assert holder(catalog) == "w-new"

    assert run.result.skipped is None
    assert run.result.notes == [
        f"{DATASET}: took over the lease of {dead}, a process on this host that died"
    ]
    assert run.result.errors == []
    assert holder(catalog) is None  # given back


def test_a_running_holder_keeps_its_lease(
    settings: Settings, catalog: Catalog, live_holder: str
) -> None:
    with holding_lease(settings, catalog, DATASET, "w-new") as run:
        assert run.lease is None
    assert run.result.skipped == f"{DATASET} is being ingested by {live_holder}"
    assert run.result.notes == []
    assert holder(catalog) == live_holder


def test_a_reused_pid_does_not_keep_a_dead_holders_lease(
    settings: Settings, catalog: Catalog
) -> None:
    # The holder had this process's pid but started at another time: it was an earlier
    # process whose pid the system has given to this one.
    mine = parse_worker(worker_id())
    assert mine is not None
    ticks, scope = mine.start.split("-")
    dead = f"{mine.host}:{mine.pid}:{int(ticks) - 1}-{scope}:0a0b0c"
    assert catalog.acquire_lease(NAME, dead, 300)

    with holding_lease(settings, catalog, DATASET, "w-new") as run:
        assert run.lease is not None
    assert run.result.notes == [
        f"{DATASET}: took over the lease of {dead}, a process on this host that died"
    ]


@pytest.mark.parametrize("where", ["another host", "another boot", "another name format"])
def test_a_holder_that_cannot_be_judged_from_here_keeps_its_lease_until_it_expires(
    settings: Settings, catalog: Catalog, where: str
) -> None:
    dead = parse_worker(killed_holder(catalog, "scratch"))
    assert dead is not None
    ticks, _ = dead.start.split("-")
    owner = {
        # PostgreSQL catalogs are shared by several machines: their pids mean nothing here.
        "another host": f"not-{dead.host}:{dead.pid}:{dead.start}:0a0b0c",
        # Another container on this host (another PID namespace), or before a reboot.
        "another boot": f"{dead.host}:{dead.pid}:{ticks}-00000000:0a0b0c",
        "another name format": f"w-{dead.pid}",
    }[where]
    assert catalog.acquire_lease(NAME, owner, 300)

    with holding_lease(settings, catalog, DATASET, "w-new") as run:
        assert run.lease is None
    assert run.result.skipped == f"{DATASET} is being ingested by {owner}"
    assert holder(catalog) == owner


def test_work_longer_than_the_lease_keeps_it_and_commits(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, lease_seconds=1)
    lake = Lake(settings.lake)
    with Catalog(settings.resolved_catalog_url) as catalog:
        taken_by_other: list[bool] = []
        with holding_lease(settings, catalog, DATASET, "w-long") as run:
            assert run.lease is not None
            # Three lease lifetimes of work, while another worker keeps asking for the lease.
            until = time.monotonic() + 3 * settings.lease_seconds
            while time.monotonic() < until:
                taken_by_other.append(catalog.acquire_lease(NAME, "w-other", 1))
                time.sleep(0.1)
            batch = new_batch(DATASET, "w-long")
            place = target(lake, DATASET, "2026-06-01", batch.batch_id)
            batch.files.append(write_table(lake, table(), place, "1"))
            batch.rows, batch.hours = 3, {T0}
            commit(catalog, batch, run.lease)

        assert run.result.errors == []
        assert not any(taken_by_other)
        assert [f.path for f in catalog.live_files(DATASET)] == [batch.files[0].path]


def test_a_lease_lost_meanwhile_still_fails_the_commit(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, lease_seconds=1)
    lake = Lake(settings.lake)
    with Catalog(settings.resolved_catalog_url) as catalog:
        with holding_lease(settings, catalog, DATASET, "w-paused") as run:
            assert run.lease is not None
            # As if this worker had been paused past its lease and another had taken it over.
            with catalog.engine.begin() as conn:
                conn.execute(leases.update().where(leases.c.name == NAME).values(owner="w-b"))
            time.sleep(settings.lease_seconds)  # the renewer meets the new holder meanwhile
            batch = new_batch(DATASET, "w-paused")
            place = target(lake, DATASET, "2026-06-01", batch.batch_id)
            batch.files.append(write_table(lake, table(), place, "1"))
            batch.rows, batch.hours = 3, {T0}
            commit(catalog, batch, run.lease)

        assert run.result.errors == [
            f"lease {NAME!r} is no longer held by w-paused; nothing was committed"
        ]
        assert catalog.live_files(DATASET) == []
        assert holder(catalog) == "w-b"
