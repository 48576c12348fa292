"""A subject's history read from PostgreSQL in one read-only transaction, or a transaction per
statement: ``Engine.history`` with and without the store's ``reading()``.

    python bench/history_reads.py [--records N]

Uses the tables ``bench/access.py`` loads (``bench_v<version>_n<records>_*``, default
1,000,000 records) in the database ``FAIRPROC_TEST_POSTGRESQL_URL`` names. 400 random subjects,
each asked of both engines in turn (alternating which goes first), every history a cache miss;
prints the median, p90 and slowest, milliseconds of wall time.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import worlds  # noqa: E402
from access import POSTGRESQL_DEFAULT, POSTGRESQL_ENV, prefix  # noqa: E402
from fairproc.adapters.sql import SqlStore  # noqa: E402

from fairproc import Engine  # noqa: E402

SUBJECTS = 400


class WithoutReading:
    """The store as one without ``reading()``: each read in a transaction of its own."""

    def __init__(self, store: SqlStore):
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "reading":
            raise AttributeError(name)
        return getattr(self._store, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    url = os.environ.get(POSTGRESQL_ENV) or POSTGRESQL_DEFAULT
    store = SqlStore(url, prefix=prefix(args.records))
    try:
        total = worlds.counts(args.records)["subjects"]
        ways = {
            "one transaction (reading())": Engine(worlds.POLICY, store),
            "a transaction per statement": Engine(worlds.POLICY, WithoutReading(store)),  # type: ignore[arg-type]
        }
        rng = random.Random(5)
        subjects = [f"s{i:07d}" for i in rng.sample(range(total), SUBJECTS + 10)]
        for subject in subjects[:10]:  # warm: connections, prepared statements
            for engine in ways.values():
                engine.history(subject)
        times: dict[str, list[float]] = {name: [] for name in ways}
        for i, subject in enumerate(subjects[10:]):
            order = list(ways.items()) if i % 2 else list(reversed(ways.items()))
            for name, engine in order:
                started = time.perf_counter()
                engine.history(subject)
                times[name].append((time.perf_counter() - started) * 1000)
        print(
            f"Engine.history on PostgreSQL, {args.records:,} records, {SUBJECTS} subjects "
            "(milliseconds, wall)"
        )
        for name, ms in times.items():
            p90 = statistics.quantiles(ms, n=10)[-1]
            print(
                f"{name:<30} median {statistics.median(ms):6.2f}  p90 {p90:6.2f}  "
                f"slowest {max(ms):6.2f}"
            )
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
