"""configs/metaxl.yaml end to end (tests/test_presets.py's smoke test, in a file of its own so
that it runs beside the other presets' on another worker)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.test_presets import run_preset

pytestmark = pytest.mark.e2e


def test_metaxl_preset_runs_end_to_end(tmp_path):
    run_preset(REPO / "configs" / "metaxl.yaml", tmp_path)
