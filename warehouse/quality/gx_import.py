"""Importing Great Expectations: without the modules no Seneca suite uses, once, maybe early.

GX imports scipy.stats and altair at module level for expectations Seneca's suites do not use
(KL divergence and KS tests, and their charts), which is a third of the CPU its import costs.
Here they are imported by GX's modules on first use instead: a stand-in module takes their
place while GX is imported, and loads the real module if anything asks it for an attribute.
Anything imported after GX gets the real modules.

The main job needs GX only in its quality step: `start_importing_gx` lets it import GX on a
thread while the steps before run (DuckDB does most of their work without the GIL).
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
_thread: threading.Thread | None = None


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
    """`great_expectations`, imported once, with analytics off and scipy.stats/altair deferred.

    Waits for an import `start_importing_gx` began.
    """
    thread = _thread
    if thread is not None:
        thread.join()
    with _lock:
        return _import()


def start_importing_gx() -> None:
    """Import GX on a thread of its own now, for a later `import_gx` in this process."""
    global _thread
    with _lock:
        if _thread is not None or "great_expectations" in sys.modules:
            return
        # Not a daemon: an interpreter exiting mid-import may crash instead of exiting.
        _thread = threading.Thread(target=_import_quietly, name="import-gx")
        _thread.start()


def _import_quietly() -> None:
    # An error here is raised again where GX is used: `import_gx` imports it once more.
    try:
        with _lock:
            _import()
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).debug("importing great_expectations failed", exc_info=True)


def _import() -> types.ModuleType:
    if (gx := sys.modules.get("great_expectations")) is not None:
        return gx
    # GX reads this when imported; analytics must never leave the machine.
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    stand_ins = {name: _Deferred(name) for name in DEFERRED if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        gx = importlib.import_module("great_expectations")
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    # Keep GX's own INFO chatter (temporary docs dirs) out of flow logs.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return gx
