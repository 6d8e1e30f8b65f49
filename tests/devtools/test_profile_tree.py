"""profile_tree: one function's share of the busy samples, and of what it calls."""

from __future__ import annotations

from pathlib import Path

from devtools.bench.report import busy, read_stacks
from devtools.profile_tree import tree


def test_a_function_s_share_splits_into_its_callees_and_itself(tmp_path: Path) -> None:
    raw = tmp_path / "streamrec-profile.txt"
    cli, scorer, serving, agent = (tmp_path / name for name in (
        "streams/cli.py", "streams/scoring/scorer.py", "models/serving.py",
        "streams/ingest/agent.py"))
    raw.write_text(
        f"main ({cli}:1);rank ({scorer}:5);model ({serving}:9) 6\n"
        f"main ({cli}:1);rank ({scorer}:7) 2\n"
        f"main ({cli}:1);ingest ({agent}:3) 2\n"
        f"main ({cli}:1);EpollSelector.select (selectors.py:468) 10\n")
    stacks = busy(read_stacks(raw, tmp_path))
    share, callees = tree(stacks, "rank")
    assert share == 0.8  # 8 of the 10 busy samples; the idle wait is left out
    assert callees == {"model (models/serving.py)": 0.6, "<self>": 0.2}
    assert tree(stacks, "nowhere") == (0.0, {})
