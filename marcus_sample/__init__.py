"""Synthetic Marcus installations (logs, JSON state, SQLite databases) for demos and tests.

`world` simulates the installation; `logs` writes its JSONL streams, `state` its JSON state files
and SQLite databases (schemas in `dbs`); `write` writes all of it plus a manifest. The package
does not import the lake library (`warehouse`): it stands for Marcus, not for Seneca's readers.
"""

from marcus_sample.world import World, build_world
from marcus_sample.write import SampleSummary, write_sample

__all__ = ["SampleSummary", "World", "build_world", "write_sample"]
