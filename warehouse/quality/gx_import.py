"""Importing Great Expectations without the modules no Seneca suite uses.

GX imports scipy.stats and altair at module level for expectations Seneca's suites do not use
(KL divergence and KS tests, and their charts): a third of the CPU its import costs. Here
they are imported by GX's modules on first use instead: a stand-in module takes their place
while GX is imported, and loads the real module if anything asks it for an attribute.
Anything imported after GX gets the real modules.

Importing GX on a thread while the main job ingests was tried: the import holds the GIL for
seconds, the ingest threads wait for it between DuckDB calls, and the job took longer.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import types
from typing import Any

# GX imports them at module level; no expectation of Seneca's suites uses them.
DEFERRED = ("scipy.stats", "altair")

_lock = threading.Lock()


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is asked for, then loads it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_loading"] = threading.Lock()

    def __getattr__(self, attribute: str) -> Any:
        with self._loading:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            module = importlib.import_module(self.__name__)
        return getattr(module, attribute)


def import_gx() -> types.ModuleType:
    """`great_expectations`, imported once, with analytics off and scipy.stats/altair deferred."""
    with _lock:
        return _import()


def _import() -> types.ModuleType:
    gx = sys.modules.get("great_expectations") or _import_deferring(DEFERRED)
    # Keep GX's own INFO chatter (temporary docs dirs) out of flow logs.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return gx


def _import_deferring(deferred: tuple[str, ...]) -> types.ModuleType:
    # GX reads this when imported; analytics must never leave the machine.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    stand_ins = {name: _Deferred(name) for name in deferred if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        return importlib.import_module("great_expectations")
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
