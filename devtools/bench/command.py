"""``streamrec bench``: baseline, ceiling and streamrec side by side on one broker and stream.

Everything it starts (broker, workers, py-spy) it stops again, also on Ctrl-C, SIGTERM or
an error. See docs/performance.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import CHECKOUT_ROOT
from devtools.bench import KEY_BY, STREAMREC_IDS_ONLY, SYSTEMS
from devtools.bench.workload import DEFAULT_MIX, WorkloadConfig, catalog
from devtools.processes import streamrec_command
from streams.errors import StreamrecError

# Imported whenever ``streamrec bench`` builds its parser (--help too): keep the module
# light; what only a benchmark needs is imported in run_bench.

FRESHNESS_POOL = 20_000


class BenchError(StreamrecError):
    """The benchmark could not run (e.g. training the model failed): the message says which
    step, and the log it names holds the details."""


@dataclass(frozen=True)
class Defaults:
    runs: int
    events: int
    workers: str
    freshness_s: float
    train_events: int


FULL = Defaults(runs=3, events=100_000, workers="1,2,4", freshness_s=20.0,
                train_events=50_000)
QUICK = Defaults(runs=1, events=6_000, workers="", freshness_s=3.0, train_events=3_000)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="6k events, 1 run, no scaling, a 3 s freshness phase, a "
                        "model trained on 3k events (about a minute)")
    parser.add_argument("--runs", type=int, help="runs per system; figures are medians "
                        f"(default {FULL.runs}, --quick {QUICK.runs})")
    parser.add_argument("--events", type=int, help="backlog events per run "
                        f"(default {FULL.events:,}, --quick {QUICK.events:,})")
    parser.add_argument("--users", type=int, default=100_000, help="user population")
    parser.add_argument("--items", type=int, default=10_000, help="catalogue size")
    parser.add_argument("--mix", default=",".join(f"{x:g}" for x in DEFAULT_MIX),
                        help="shares of view,click,add_to_cart,purchase")
    parser.add_argument("--item-exponent", type=float, default=1.0,
                        help="Zipf exponent of item popularity")
    parser.add_argument("--user-exponent", type=float, default=0.6,
                        help="Zipf exponent of user activity (0 = uniform)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--partitions", type=int, default=4,
                        help="partitions of every topic (the scaling runs use at least "
                        "as many as workers)")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help="which of ceiling,baseline,streamrec,streamrec-ids to run "
                        "(streamrec-ids: no catalogue published, for the cost of the text "
                        "features)")
    parser.add_argument("--workers", default=None,
                        help="streamrec worker counts for the scaling runs, e.g. 1,2,4; "
                        f"'' for none (default {FULL.workers}, --quick none)")
    parser.add_argument("--scaling-runs", type=int,
                        help="runs per worker count (default: --runs)")
    parser.add_argument("--freshness-seconds", type=float,
                        help="length of the fixed-load freshness phase "
                        f"(default {FULL.freshness_s:g}, --quick {QUICK.freshness_s:g}; "
                        "0 = skip)")
    parser.add_argument("--stage-loads", default="",
                        help="also run streamrec's freshness phase at these fractions of its "
                             "own peak (e.g. 0.1,0.5,0.9), each with where the time goes per "
                             "stage (streamrec_stage_seconds)")
    parser.add_argument("--key-by", choices=KEY_BY, default="event",
                        help="what the load generator keys events by: event (event_id, "
                        "the default: every system re-keys by user itself) or user "
                        "(user_id, Kafka's murmur2 partitioner: streamrec applies such "
                        "events without the re-key hop)")
    parser.add_argument("--stage-rates", default="",
                        help="also run streamrec's freshness phase at these fixed rates in "
                             "events/s (e.g. 100,500), each with the per-stage breakdown: "
                             "comparable across runs when the machine is busy")
    parser.add_argument("--load-fraction", type=float, default=0.5,
                        help="freshness load as a fraction of the system's own measured "
                        "peak (default 0.5)")
    parser.add_argument("--model", type=Path, metavar="MODEL_DIR",
                        help="model directory to serve; default: train one on a slice of "
                        "the generated stream with 'streamrec train --epochs 1'")
    parser.add_argument("--train-events", type=int,
                        help="events of the slice the model is trained on "
                        f"(default {FULL.train_events:,}, --quick {QUICK.train_events:,})")
    parser.add_argument("--out", type=Path,
                        help="results folder (default var/bench/<UTC time>)")
    parser.add_argument("--profile", action="store_true",
                        help="one extra streamrec run (not counted) under py-spy; the "
                        "profile is saved next to the results")
    parser.add_argument("--profile-format", choices=("speedscope", "raw"),
                        default="speedscope")
    parser.add_argument("--profile-rate", type=float, metavar="EVENTS_PER_S",
                        help="with --profile: profile a live load at this rate (one "
                        "freshness phase, small micro-batches) instead of a backlog")
    parser.add_argument("--min-ratio", type=float, metavar="R",
                        help="regression guard: exit 3 when streamrec / baseline events/s "
                        "is below R (needs both systems; make bench-guard uses 2)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep state directories and the trained model")


def _say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _workload(args: argparse.Namespace, events: int) -> WorkloadConfig:
    mix = tuple(float(x) for x in args.mix.split(","))
    if len(mix) != 4:
        raise BenchError(f"--mix needs 4 shares (view,click,add_to_cart,purchase): {args.mix}")
    return WorkloadConfig(events=events, users=args.users, items=args.items,
                          mix=mix,
                          item_exponent=args.item_exponent, user_exponent=args.user_exponent,
                          seed=args.seed)


def _train(events: list[dict[str, Any]], workdir: Path, out: Path) -> Path:
    import orjson

    train_file = workdir / "train-events.jsonl"
    train_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    model_dir = workdir / "model"
    log_path = out / "train.log"
    command = streamrec_command("train", "--events", str(train_file), "--out",
                                str(model_dir), "--epochs", "1", "--no-progress")
    _say(f"training the model on {len(events):,} events: streamrec train --epochs 1 "
         f"(log {log_path})")
    started = time.monotonic()
    with log_path.open("wb") as log:
        result = subprocess.run(command, cwd=CHECKOUT_ROOT, stdout=log,
                                stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise BenchError(f"training the model failed (exit {result.returncode}); see {log_path}")
    _say(f"trained in {time.monotonic() - started:.0f}s")
    return model_dir


def _model_info(model_dir: Path) -> dict[str, Any]:
    import orjson

    try:
        meta = orjson.loads((model_dir / "meta.json").read_bytes())
    except (OSError, ValueError):
        return {"path": str(model_dir)}
    return {"path": str(model_dir), "name": meta.get("name"), "n_items": meta.get("n_items"),
            "architecture": meta.get("architecture")}


def _line(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['system']} run {result['run'] + 1}: FAILED {result['error']}"
    fresh = (f", freshness p50/p99 {result['freshness_p50_ms']:.0f}/"
             f"{result['freshness_p99_ms']:.0f} ms at {result['offered_events_per_s']:.0f}/s"
             if "freshness_p50_ms" in result else "")
    return (f"{result['system']} run {result['run'] + 1} ({result['workers']} worker(s)): "
            f"{result['events_per_s']:,.0f} events/s, {result['recs_per_s']:,.0f} recs/s, "
            f"{result['cpu_s_per_1k_events']:.3f} CPU s/1k events, "
            f"{result.get('peak_rss_mib', 0):.0f} MiB{fresh}")


def _live_line(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"FAILED {result['error']}"
    return (f"{result['offered_events_per_s']:.0f} events/s offered, "
            f"{result['processed_events']:,} processed, freshness p50/p99 "
            f"{result['freshness_p50_ms']:.0f}/{result['freshness_p99_ms']:.0f} ms")


def run_bench(args: argparse.Namespace) -> int:
    from devtools.bench.harness import PROBE_EVENTS, RunPlan, run_once
    from devtools.bench.report import plot, render, write_json
    from devtools.bench.workload import generate
    from devtools.broker import start_broker
    from devtools.machine import machine_info

    d = QUICK if args.quick else FULL
    runs = args.runs or d.runs
    events = args.events or d.events
    workers = _int_list(d.workers if args.workers is None else args.workers)
    freshness_s = d.freshness_s if args.freshness_seconds is None else args.freshness_seconds
    systems = [s for s in (*SYSTEMS, STREAMREC_IDS_ONLY) if s in args.systems.split(",")]
    if args.min_ratio is not None and not {"baseline", "streamrec"} <= set(systems):
        raise BenchError("--min-ratio compares streamrec with baseline: add both to --systems")
    if args.profile_rate is not None and (not args.profile or args.profile_rate <= 0
                                          or freshness_s <= 0):
        raise BenchError("--profile-rate needs --profile, a rate above 0 and a freshness "
                         "phase (--freshness-seconds above 0)")
    out = args.out or CHECKOUT_ROOT / "var" / "bench" / time.strftime("%Y%m%dT%H%M%SZ",
                                                                     time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    machine = machine_info()
    config = {"quick": args.quick, "runs": runs, "events": events, "systems": systems,
              "workers": workers, "partitions": args.partitions,
              "freshness_seconds": freshness_s, "load_fraction": args.load_fraction,
              "stage_loads": args.stage_loads, "stage_rates": args.stage_rates,
              "key_by": args.key_by,
              "session_timeout_s": 6.0, "rebalance_timeout_s": 4.0, "heartbeat_s": 0.5}
    _say(f"machine: {machine['cpu']}, {machine['cores_available']} cores, "
         f"{machine['ram_gib']} GiB, Python {machine['python']}, "
         f"load {machine['load_average_at_start']}")

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with ExitStack() as stack:
            workdir = Path(tempfile.mkdtemp(prefix="streamrec-bench-"))
            if not args.keep_workdir:
                import shutil

                stack.callback(shutil.rmtree, workdir, True)
            workload = generate(_workload(args, events), freshness_pool=FRESHNESS_POOL)
            probe, pool = workload.freshness_pool[:PROBE_EVENTS], workload.freshness_pool
            _say(f"workload: {workload.summary()}")
            model_dir = args.model or _train(
                workload.events[: args.train_events or min(events, d.train_events)],
                workdir, out)
            broker = start_broker()
            stack.callback(broker.stop)
            _say(f"embedded broker on {broker.bootstrap}; results in {out}")
            plan = RunPlan(broker_url=broker.url, partitions=args.partitions,
                           model_dir=model_dir, workdir=workdir, logs=out / "logs",
                           freshness_s=freshness_s, load_fraction=args.load_fraction,
                           sample_interval_s=0.1 if args.quick else 0.2,
                           catalog=tuple(catalog(_workload(args, events))),
                           stage_loads=tuple(float(f) for f in args.stage_loads.split(",")
                                             if f.strip()),
                           stage_rates=tuple(float(r) for r in args.stage_rates.split(",")
                                             if r.strip()),
                           key_by=args.key_by)
            results = _measure(plan, args, systems, runs, workers, workload.events, probe,
                               pool, out, run_once)
            results.update(machine=machine, config=config, workload=workload.summary(),
                           model=_model_info(model_dir))
    except KeyboardInterrupt:
        _say("interrupted; everything started was stopped")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_json(out / "results.json", results)
    plot(out / "bench.png", results)
    report = render(results)
    (out / "results.md").write_text(report + "\n")
    print(report, flush=True)
    _say(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'bench.png'}")
    if results["failures"]:
        return 1
    if args.min_ratio is not None:
        from devtools.bench.measure import ratio_guard

        verdict = ratio_guard(results["ratios"], args.min_ratio)
        if verdict is not None:
            _say(f"GUARD FAILED: {verdict}")
            return 3
        _say(f"guard passed: streamrec/baseline = "
             f"{results['ratios']['streamrec/baseline']:.2f}x >= {args.min_ratio:g}x")
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _measure(plan: Any, args: argparse.Namespace, systems: list[str], runs: int,
             workers: list[int], backlog: list[dict[str, Any]], probe: list[dict[str, Any]],
             pool: list[dict[str, Any]], out: Path, run_once: Any) -> dict[str, Any]:
    from devtools.bench.harness import profile_live
    from devtools.bench.measure import median
    from devtools.bench.report import profile_summary, ratios, summarise

    all_runs: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    failures: list[str] = []
    for run in range(runs):  # interleaved, so drifting background load hits all alike
        for name in systems:
            result = run_once(plan, name, run, backlog, probe, pool)
            all_runs[name].append(result)
            _say(_line(result))
            if "error" in result:
                failures.append(f"{name} run {run + 1}: {result['error']}")
    ok = {name: [r for r in rs if "error" not in r] for name, rs in all_runs.items()}
    summary = {name: summarise(rs) for name, rs in ok.items() if rs}

    scaling: dict[int, dict[str, Any]] = {}
    if workers and "streamrec" in systems:
        partitions = max([args.partitions, *workers])
        per_n: dict[int, list[dict[str, Any]]] = {n: [] for n in workers}
        if 1 in per_n and partitions == args.partitions:
            per_n[1] = ok["streamrec"]  # the main streamrec runs are this measurement
        for run in range(args.scaling_runs or runs):
            for n in workers:
                if n == 1 and per_n[1] is ok["streamrec"]:
                    continue
                result = run_once(plan, "streamrec", run, backlog, probe, pool,
                                  workers=n, partitions=partitions, freshness=False)
                _say(_line(result))
                if "error" in result:
                    failures.append(f"streamrec x{n} run {run + 1}: {result['error']}")
                else:
                    per_n[n].append(result)
        scaling = {n: {"events_per_s": median([r["events_per_s"] for r in rs]),
                       "cpu_s_per_1k_events": median([r["cpu_s_per_1k_events"] for r in rs]),
                       "runs": len(rs), "partitions": partitions}
                   for n, rs in per_n.items()}
        for n, rs in per_n.items():
            if not (n == 1 and rs is ok["streamrec"]):
                all_runs.setdefault(f"streamrec x{n}", rs)

    profile: dict[str, Any] = {}
    if args.profile and "streamrec" in systems:
        path = out / f"streamrec-profile.{'json' if args.profile_format == 'speedscope' else 'txt'}"
        if args.profile_rate:
            result = profile_live(plan, probe, pool, args.profile_rate, path,
                                  args.profile_format)
            _say("profiled live phase (not counted): " + _live_line(result))
        else:
            result = run_once(plan, "streamrec", 0, backlog, probe, pool, freshness=False,
                              profile=path, profile_format=args.profile_format)
            _say("profiled run (not counted): " + _line(result))
        profile = {"path": str(path), "run": result}
        if path.exists():
            profile["top"] = profile_summary(path, CHECKOUT_ROOT)
        else:
            failures.append(f"py-spy wrote no profile; see {path.with_suffix('.log')}")

    return {"runs": all_runs, "runs_ok": {n: len(rs) for n, rs in ok.items()},
            "summary": summary, "ratios": ratios(summary, ok), "scaling": scaling,
            "profile": profile, "failures": failures}
