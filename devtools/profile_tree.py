"""Where one function's time goes in a saved py-spy profile:
``python -m devtools.profile_tree PROFILE FUNCTION [FUNCTION ...]``.

PROFILE is what ``streamrec bench --profile`` saved (``streamrec-profile.txt`` with
``--profile-format raw``, or the speedscope JSON). Each FUNCTION is matched against
``name (file)`` (e.g. ``rank_users`` or ``Catalog.queries``); for each, the share of the busy
samples (idle waits left out, as the bench's own summary does) spent in it, including what
it calls, then the shares of what it calls directly and of its own code. Two profiles of
the same command, before and after a change, compare part by part.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from devtools.bench.report import busy, function_name, read_stacks


def tree(stacks: list[tuple[list[str], float]], function: str
         ) -> tuple[float, dict[str, float]]:
    """(share of ``stacks`` inside ``function``, {direct callee or "<self>": share})."""
    total = sum(w for _, w in stacks)
    inside = 0.0
    callees: dict[str, float] = defaultdict(float)
    for stack, weight in stacks:
        names = [function_name(frame) for frame in stack]
        depths = [i for i, name in enumerate(names) if function in name]
        if not depths:
            continue
        inside += weight
        deepest = depths[-1]
        callees[names[deepest + 1] if deepest + 1 < len(names) else "<self>"] += weight
    if not total:
        return 0.0, {}
    return inside / total, {name: w / total for name, w in callees.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("functions", nargs="+")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    stacks = busy(read_stacks(args.profile, Path.cwd()))
    for function in args.functions:
        share, callees = tree(stacks, function)
        print(f"{share:6.1%}  {function}")
        for name, part in sorted(callees.items(), key=lambda kv: -kv[1])[: args.top]:
            print(f"   {part:6.1%}  {name}")


if __name__ == "__main__":
    main()
