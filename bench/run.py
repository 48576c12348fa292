"""Every benchmark, one after another, each printing its table: the one command.

    python bench/run.py [--quick]

Runs ``decisions.py`` (decision latency, with and without explanations, beside hand-written
code, durable-rules, rule-engine and casbin), ``coldstart.py`` (a new process importing
fairproc and loading the shipped policy), ``sweep.py`` (retention sweeps over 10,000 to
1,000,000 records on memory, SQLite and CSV, beside a plain loop and plain SQL),
``whole_store.py`` (the marketing list and the records processable for marketing, asked of the
whole SQLite store), ``access.py`` (an access request among 1,000,000 records
on SQLite and PostgreSQL, beside hand-written SQL) and, when durable-rules can be imported,
``reactive.py`` (events per second through the reactive engine). ``--quick`` passes through
(fewer iterations, at most 100,000 records; ``reactive.py`` then posts 2,000 events). The
first full run makes and caches the generated stores (``/tmp/fairproc-bench/``, and tables
``bench_*`` in the PostgreSQL database), which takes several minutes; later runs reuse them.
Each benchmark runs in a process of its own; the exit status is the first failure's, if any.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run of each")
    args = parser.parse_args(argv)
    quick = ["--quick"] if args.quick else []
    runs: list[tuple[str, list[str]]] = [
        ("decisions.py", quick),
        ("coldstart.py", quick),
        ("sweep.py", quick),
        ("whole_store.py", quick),
        ("access.py", quick),
    ]
    reactive = HERE / "reactive.py"
    if reactive.exists():
        if importlib.util.find_spec("durable") is not None:
            runs.append(("reactive.py", ["--events", "2000", "--runs", "3"] if args.quick else []))
        else:
            print("reactive.py: not run (durable-rules is not installed)\n")
    status = 0
    for script, extra in runs:
        print(f"== {script} {' '.join(extra)}".rstrip(), flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / script), *extra])
        took = time.perf_counter() - started
        print(f"({script}: {took:.0f} s, exit {done.returncode})\n", flush=True)
        if done.returncode and not status:
            status = done.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
