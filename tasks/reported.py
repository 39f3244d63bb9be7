"""The mark on task log records whose problem the `seneca` commands also print themselves.

Such records still reach the Prefect API (and so the UI and a worker's log); only the CLI's own
console leaves them out, so a person at the terminal reads each problem once.
"""

from __future__ import annotations

from typing import Any

REPORTED_ATTRIBUTE = "seneca_reported"
REPORTED: dict[str, Any] = {REPORTED_ATTRIBUTE: True}
