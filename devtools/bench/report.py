"""What ``streamrec bench`` writes: the table, ratios, JSON and a PNG (the machine it ran on
comes from :mod:`devtools.machine`)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools.bench import STREAMREC_IDS_ONLY, SYSTEMS
from devtools.bench.measure import median, quantiles, ratio
from devtools.bench.stages import render_profile

FIGURES = ("events_per_s", "recs_per_s", "cpu_s_per_1k_events", "cores", "peak_rss_mib",
           "freshness_p50_ms", "freshness_p95_ms", "freshness_p99_ms")


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median of every figure over the runs that produced it."""
    return {name: median([run.get(name) for run in runs]) for name in FIGURES}


def ratios(summary: dict[str, dict[str, Any]], runs: dict[str, list[dict[str, Any]]]
           ) -> dict[str, Any]:
    """streamrec/baseline and streamrec/ceiling of sustained events/s (ratio of the
    medians), with the per-run ratios of runs made side by side."""
    out: dict[str, Any] = {}
    for other in ("baseline", "ceiling"):
        if "streamrec" not in summary or other not in summary:
            continue
        out[f"streamrec/{other}"] = ratio(summary["streamrec"]["events_per_s"],
                                          summary[other]["events_per_s"])
        out[f"streamrec/{other} per run"] = [
            ratio(a.get("events_per_s"), b.get("events_per_s"))
            for a, b in zip(runs["streamrec"], runs[other], strict=False)
        ]
    if "streamrec" in summary and "baseline" in summary:
        out["baseline/streamrec cpu per event"] = ratio(
            summary["baseline"]["cpu_s_per_1k_events"],
            summary["streamrec"]["cpu_s_per_1k_events"])
    if "streamrec" in summary and "streamrec-ids" in summary:
        out["streamrec/streamrec-ids cpu per event"] = ratio(
            summary["streamrec"]["cpu_s_per_1k_events"],
            summary["streamrec-ids"]["cpu_s_per_1k_events"])
    return out


def stage_costs(runs: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Median over runs of each stage cost a streamrec run reported."""
    keys = sorted({key for run in runs for key in run.get("stage_costs", {})})
    out: dict[str, float | None] = {}
    for key in keys:
        values = sorted(v for run in runs
                        if (v := run.get("stage_costs", {}).get(key)) is not None)
        out[key] = values[len(values) // 2] if values else None
    return out


def stage_profile(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per load level (the main freshness phase, every ``--stage-loads`` one, then every
    ``--stage-rates`` one), the median over runs of the offered rate, the freshness and each
    stage's p50 / p99."""
    phases: dict[tuple[int, float], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        for phase in ([run] if "stages" in run else []) + list(run.get("load_profile", [])):
            rate = phase.get("load_rate")  # --stage-rates: grouped by rate, after fractions
            phases[(0, phase["load_fraction"]) if rate is None else (1, rate)].append(phase)
    out = []
    for key in sorted(phases):
        group = phases[key]
        stage_names = sorted({s for phase in group for s in phase.get("stages", {})})
        out.append({
            "load_fraction": median([p.get("load_fraction") for p in group]),
            "load_rate": key[1] if key[0] else None,
            "offered_events_per_s": median([p.get("offered_events_per_s") for p in group]),
            "freshness_p50_ms": median([p.get("freshness_p50_ms") for p in group]),
            "freshness_p99_ms": median([p.get("freshness_p99_ms") for p in group]),
            "stages": {name: {key: median([p["stages"].get(name, {}).get(key) for p in group])
                              for key in ("p50_ms", "p99_ms")}
                       for name in stage_names},
        })
    return out


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def table_rows(summary: dict[str, dict[str, Any]], n_runs: dict[str, int]) -> list[list[str]]:
    rows = [["system", "events/s", "recs/s", "CPU s/1k events", "cores used",
             "peak RSS MiB", "freshness p50 / p95 / p99 ms", "runs"]]
    for name in (*SYSTEMS, STREAMREC_IDS_ONLY):
        if name not in summary:
            continue
        s = summary[name]
        fresh = ("n/a (no output)" if name == "ceiling" else
                 f"{_fmt(s['freshness_p50_ms'])} / {_fmt(s['freshness_p95_ms'])} / "
                 f"{_fmt(s['freshness_p99_ms'])}")
        rows.append([name, _fmt(s["events_per_s"]), _fmt(s["recs_per_s"]),
                     _fmt(s["cpu_s_per_1k_events"], 3), _fmt(s["cores"], 2),
                     _fmt(s["peak_rss_mib"]), fresh, str(n_runs.get(name, 0))])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(out)


def render(results: dict[str, Any]) -> str:
    """The human-readable report (also written as results.md)."""
    m = results["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores_available']}/{m['cores']} cores, {m['ram_gib']} GiB "
        f"RAM, Python {m['python']}, faust {m['faust']}, {m['broker']}, git {m['git']}",
        f"load average at start {m['load_average_at_start']}, at end "
        f"{m.get('load_average_at_end')}",
        f"workload: {results['workload']['events']:,} events, "
        f"{results['workload']['distinct_users']:,} of {results['workload']['user_population']:,} "
        f"users, {results['workload']['distinct_items']:,} of "
        f"{results['workload']['catalogue']:,} items, mix {results['workload']['mix']}; "
        f"{results['config']['partitions']} partitions; model {results['model']}",
        "",
        "```",
        text_table(table_rows(results["summary"], results["runs_ok"])),
        "```",
        "",
    ]
    for name, value in results["ratios"].items():
        if isinstance(value, list):
            lines.append(f"{name}: " + ", ".join(_fmt(v, 2) for v in value))
        else:
            lines.append(f"{name}: {_fmt(value, 2)}x")
    for name in ("streamrec", "streamrec-ids"):
        costs = stage_costs([r for r in results["runs"].get(name, []) if "error" not in r])
        if costs:
            lines.append(f"{name} stage costs (medians, from the worker's histograms): "
                         + ", ".join(f"{key} {_fmt(value, 1)}" for key, value in
                                     costs.items()))
    for name in ("streamrec", "streamrec-ids"):
        profile = stage_profile([r for r in results["runs"].get(name, []) if "error" not in r])
        if profile:
            lines += ["", f"{name}: where the time goes, p50 / p99 ms per stage (medians over "
                      "runs; waits per event or bundle, work per micro-batch)", "",
                      *render_profile(profile)]
    if results.get("scaling"):
        lines.append("")
        lines.append("streamrec scaling (same backlog, N worker processes in one group): "
                     + ", ".join(f"{n} -> {_fmt(s.get('events_per_s'))} events/s"
                                 for n, s in results["scaling"].items()))
    top = (results.get("profile") or {}).get("top")
    if top and top.get("self"):
        lines.append("")
        lines.append(f"py-spy profile of one extra streamrec run ({results['profile']['path']}; "
                     f"{top['idle_share']:.0%} of samples idle, left out): busy share by leaf")
        lines += [f"  {share:6.1%}  {frame}" for frame, share in top["self"][:10]]
        lines.append("  streamrec functions, including what they call:")
        lines += [f"  {share:6.1%}  {frame}" for frame, share in top["inclusive"][:10]]
    for failure in results.get("failures", []):
        lines.append(f"FAILED: {failure}")
    return "\n".join(lines)


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def plot(path: Path, results: dict[str, Any]) -> None:
    """Throughput over time for every run, freshness distributions, scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"ceiling": "tab:gray", "baseline": "tab:red", "streamrec": "tab:blue"}
    panels = 3 if results.get("scaling") else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.5))
    ax = axes[0]
    for name in (*SYSTEMS, STREAMREC_IDS_ONLY):
        for i, run in enumerate(results["runs"].get(name, [])):
            series = run.get("timeline") or []
            if series:
                ax.plot([p[0] for p in series], [p[1] for p in series], color=colours[name],
                        alpha=0.8, lw=1, label=name if i == 0 else None)
    ax.set(title="throughput while consuming the backlog", xlabel="s since the backlog was sent",
           ylabel="events/s (1 s window)")
    ax.legend()
    ax.grid(alpha=0.3)
    ax = axes[1]
    for name in ("baseline", "streamrec"):
        runs = results["runs"].get(name, [])
        values = sorted(v for run in runs for v in run.get("freshness_ms_values", []))
        read = sum(run.get("recommendations_read", 0) for run in runs)
        if values:
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))],
                    color=colours[name], label=f"{name} ({read:,} recommendations)")
    ax.set(xscale="log", title="freshness at 50 % of each system's own peak",
           xlabel="event time -> recommendation read back (ms)", ylabel="fraction ≤ x")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    if panels == 3:
        ax = axes[2]
        ns = list(results["scaling"])
        rates = [results["scaling"][n].get("events_per_s") or 0 for n in ns]
        ax.bar([str(n) for n in ns], rates, color=colours["streamrec"])
        ax.set(title="streamrec scaling", xlabel="worker processes", ylabel="events/s")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"streamrec bench — {results['machine']['cpu']}, "
                 f"{results['machine']['cores_available']} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


IDLE_LEAVES = ("EpollSelector.select", "select (selectors.py",
               "_worker (concurrent/futures/thread.py",
               "Condition.wait", "Event.wait", "_wait_for_tstate_lock")
PROJECT_DIRS = ("streams/", "models/", "schemas/")
ENTRY_FILES = ("streams/cli.py", "streams/runner.py")


def _frame_label(name: str, file: str, line: object, repo: Path) -> str:
    if "site-packages/" in file:
        where = file.split("site-packages/", 1)[1]
    else:
        try:
            where = str(Path(file).resolve().relative_to(repo))
        except ValueError:
            where = Path(file).name
    return f"{name} ({where}:{line})"


def function_name(label: str) -> str:
    """``name (file:line)`` -> ``name (file)``: inclusive time is per function."""
    head, _, where = label.rpartition(" (")
    return f"{head} ({where.rsplit(':', 1)[0]})"


def _is_project(label: str) -> bool:
    where = label.rsplit(" (", 1)[-1]
    return where.startswith(PROJECT_DIRS) and not where.startswith(ENTRY_FILES)


def read_stacks(path: Path, repo: Path) -> list[tuple[list[str], float]]:
    """py-spy samples (speedscope JSON or raw collapsed stacks) as (frames, weight), each
    frame ``name (file:line)`` with files relative to ``repo`` or ``site-packages``."""
    stacks: list[tuple[list[str], float]] = []
    if path.suffix == ".json":
        doc = json.loads(path.read_text())
        frames = [_frame_label(f["name"], f.get("file", "?"), f.get("line", "?"), repo)
                  for f in doc["shared"]["frames"]]
        for profile in doc["profiles"]:
            weights = profile.get("weights") or [1] * len(profile["samples"])
            stacks += [([frames[i] for i in stack], w)
                       for stack, w in zip(profile["samples"], weights, strict=True)]
    else:
        for line in path.read_text().splitlines():
            joined, _, count = line.rpartition(" ")
            if joined:
                labels = []
                for frame in joined.split(";"):
                    name, _, rest = frame.partition(" (")
                    file, _, lineno = rest.rstrip(")").rpartition(":")
                    labels.append(_frame_label(name, file, lineno, repo))
                stacks.append((labels, float(count)))
    return stacks


def busy(stacks: list[tuple[list[str], float]]) -> list[tuple[list[str], float]]:
    """The samples not waiting (their leaf is none of :data:`IDLE_LEAVES`)."""
    return [(stack, w) for stack, w in stacks
            if stack and not stack[-1].startswith(IDLE_LEAVES)]


def profile_summary(path: Path, repo: Path, top: int = 15) -> dict[str, Any]:
    """Shares of py-spy samples (speedscope JSON or raw collapsed stacks): the top leaf
    functions ("self", idle waits left out) and the top streamrec functions including what
    they call ("inclusive", frames in streams/, models/, schemas/)."""
    stacks = read_stacks(path, repo)
    working = busy(stacks)
    total = sum(w for _stack, w in working)
    if not total:
        return {"samples": 0, "self": [], "inclusive": []}
    self_weights: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    for stack, weight in working:
        self_weights[stack[-1]] += weight
        for function in {function_name(frame) for frame in stack if _is_project(frame)}:
            inclusive[function] += weight

    def ranked(weights: dict[str, float]) -> list[tuple[str, float]]:
        best = sorted(weights.items(), key=lambda kv: -kv[1])[:top]
        return [(frame, round(w / total, 4)) for frame, w in best]

    return {
        "samples": total,
        "idle_share": round(1 - total / sum(w for _s, w in stacks), 4),
        "self": ranked(self_weights),
        "inclusive": ranked(inclusive),
    }


def freshness_fields(values_s: Sequence[float]) -> dict[str, Any]:
    q = quantiles(values_s)
    return {f"freshness_{k}_ms": round(v * 1000, 1) for k, v in q.items()}
