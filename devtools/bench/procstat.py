"""CPU time and peak memory of a process and its descendants, read from ``/proc`` (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_stat(text: str) -> tuple[int, float, float]:
    """``(ppid, own cpu s, waited-for children's cpu s)`` from a ``/proc/PID/stat`` line.

    The command name (field 2) may hold spaces and parentheses, so fields are counted from
    the last ``)``: ppid is field 4, utime/stime/cutime/cstime fields 14-17.
    """
    fields = text[text.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ppid, (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def _stats() -> dict[int, tuple[int, float, float]]:
    out = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            out[int(entry.name)] = parse_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not a process
            continue
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for child, (ppid, _own, _waited) in _stats().items():
        children.setdefault(ppid, []).append(child)
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """user + system CPU seconds of the processes and all their descendants (live ones, and
    exited ones their parents waited for)."""
    return TreeMeter(pids).cpu_seconds()


class TreeMeter:
    """Cheap repeated CPU readings of process trees: the tree is re-listed every
    ``refresh_s`` (a scan of /proc), in between only the known processes are read."""

    def __init__(self, roots: list[int], refresh_s: float = 2.0) -> None:
        self.roots = list(roots)
        self.refresh_s = refresh_s
        self._pids: list[int] = []
        self._listed_at = float("-inf")

    def cpu_seconds(self) -> float:
        import time

        if time.monotonic() - self._listed_at > self.refresh_s:
            self._pids = [pid for root in self.roots for pid in process_tree(root)]
            self._listed_at = time.monotonic()
        total = 0.0
        for pid in self._pids:
            try:
                _ppid, own, waited = parse_stat((PROC / str(pid) / "stat").read_text())
            except (OSError, ValueError, IndexError):  # exited: its time is in the parent's
                continue
            total += own + waited
        return total


def peak_rss_bytes(pids: list[int]) -> int:
    """Sum of ``VmHWM`` (peak resident set) over the processes and their descendants."""
    total = 0
    for root in pids:
        for pid in process_tree(root):
            try:
                for line in (PROC / str(pid) / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
                        break
            except OSError:
                continue
    return total
