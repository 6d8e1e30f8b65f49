"""Start-up cost of a worker serving a model: seconds from spawn to ``/readyz`` 200, resident
memory once ready, and whether PyTorch got loaded — for this checkout or another one (the
"before" figure of a change: ``git worktree add /tmp/before <commit>``).

    python -m devtools.startup --model-dir MODEL_DIR [--checkout /tmp/before] [--runs 3]

Each run gets a fresh embedded broker, topics and data directory; the worker is configured
by the few ``STREAMREC_*`` variables every version knows (broker, app id, data dir, web
port, model dir), so an older checkout runs unchanged.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devtools.broker import running_broker
from devtools.processes import (
    CHECKOUT_ROOT,
    free_port,
    get_json,
    spawn,
    stop_process,
)
from streams.kafka.topics import create_topics
from streams.settings import load_settings


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def torch_loaded(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "libtorch" in maps


def one_run(model_dir: Path, checkout: Path, work: Path) -> tuple[float, float, bool]:
    with running_broker() as broker:
        port = free_port()
        settings = load_settings(broker_url=broker.url, data_dir=work / "state",
                                 web_host="127.0.0.1", web_port=port,
                                 app_id=f"startup-{port}", model_dir=model_dir)
        create_topics(settings)
        env = {"PATH": "/usr/bin:/bin", "STREAMREC_BROKER_URL": broker.url,
               "STREAMREC_APP_ID": settings.app_id, "STREAMREC_DATA_DIR": str(work / "state"),
               "STREAMREC_WEB_HOST": "127.0.0.1", "STREAMREC_WEB_PORT": str(port),
               "STREAMREC_MODEL_DIR": str(model_dir), "PYTHONPATH": str(checkout)}
        started = time.monotonic()
        process = spawn([sys.executable, "-m", "streams.cli", "worker"], work / "worker.log",
                        env=env, cwd=checkout)
        try:
            while get_json(f"http://127.0.0.1:{port}/readyz")[0] != 200:
                if process.poll() is not None or time.monotonic() - started > 180:
                    raise SystemExit(f"worker did not become ready; see {work}/worker.log")
                time.sleep(0.05)
            ready_s = time.monotonic() - started
            return ready_s, rss_mib(process.pid), torch_loaded(process.pid)
        finally:
            stop_process(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--checkout", type=Path, default=CHECKOUT_ROOT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(one_run(args.model_dir.resolve(), args.checkout.resolve(),
                                   Path(tmp)))
    ready = statistics.median(r[0] for r in results)
    rss = statistics.median(r[1] for r in results)
    print(f"{args.checkout}: ready in {ready:.2f} s (median of {len(results)}: "
          f"{', '.join(f'{r[0]:.2f}' for r in results)}), RSS {rss:.0f} MiB, "
          f"torch loaded: {sorted({r[2] for r in results})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
