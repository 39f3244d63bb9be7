"""GX is imported without scipy.stats and altair, which load when GX first uses them."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

IMPORT = """
import sys
from warehouse.quality.gx_import import import_gx

gx = import_gx()
print(sorted({"scipy.stats", "altair"} & set(sys.modules)))
from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl

print(round(float(kl.stats.entropy([0.5, 0.5], [0.25, 0.75])), 6), kl.alt.Chart.__name__)
import scipy.stats

print(scipy.stats is sys.modules["scipy.stats"], scipy.stats.entropy is kl.stats.entropy)
print(import_gx() is gx)
"""


def test_gx_imports_without_scipy_stats_and_altair_until_it_uses_them():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "0.143841 Chart", "True True", "True"]
