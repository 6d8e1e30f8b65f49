"""``streamrec bench``'s argument checks: a bad combination fails before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO


@pytest.mark.parametrize("extra", [
    ["--profile-rate", "100"],  # without --profile
    ["--profile", "--profile-rate", "0"],
    ["--profile", "--profile-rate", "100", "--freshness-seconds", "0"],
])
def test_profile_rate_needs_profile_a_rate_and_a_freshness_phase(
        tmp_path: Path, extra: list[str]) -> None:
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "bench", "--quick", "--out", str(out), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "--profile-rate needs --profile" in done.stderr
    assert not out.exists()  # refused before any broker, model or folder
