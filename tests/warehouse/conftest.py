"""The Marcus tree and lake most warehouse tests run on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.warehouse.marcus_tree import Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A fresh Marcus tree and lake under tmp_path, its catalog closed afterwards."""
    environment = make_env(tmp_path)
    yield environment
    environment.catalog.dispose()
