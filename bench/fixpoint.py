"""How many passes the interactions fixpoint needs, over generated worlds.

    python bench/fixpoint.py [--sizes 10000,100000] [--instants 4]

A record past its own retention due date is no interaction (reference-policy.md, Events), so
which records count at an instant is a fixpoint (:func:`fairproc.retention.fixpoint`): drop
the overdue, weigh again, until a pass drops nothing. For each generated world (``worlds.py``)
and a few instants (the sweep instant :data:`worlds.AT` and earlier ones, a year apart), this
counts, subject by subject, the passes that dropped records, and prints how many subjects
needed each number. The SQL compiler nests the due condition
``fairproc.retention.collection_passes(policy)`` levels deep, which must be at least the most
dropping passes any subject needs; the script checks it and says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worlds

from fairproc import Engine, World
from fairproc.retention import collection_passes, fixpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="records per world")
    parser.add_argument("--instants", type=int, default=4, help="instants, a year apart")
    args = parser.parse_args(argv)
    policy = worlds.POLICY
    levels = collection_passes(policy)
    print(f"SQL nests the due condition {levels} level(s) deep for {policy.id}")
    worst = 0
    for size in (int(s) for s in args.sizes.split(",")):
        generated = worlds.generate(size)
        engine = Engine(policy, World(generated.records, generated.events, generated.suppression))
        subjects = list(dict.fromkeys(r.subject for r in generated.records))
        for k in range(args.instants):
            at = worlds.AT - dt.timedelta(days=365 * k)
            dropping: Counter[int] = Counter()
            started = time.perf_counter()
            for subject in subjects:
                _, passes = fixpoint(engine.history(subject), at)
                dropping[max(passes - 1, 0)] += 1
            took = time.perf_counter() - started
            worst = max(worst, max(dropping))
            shown = ", ".join(f"{n} dropping: {c}" for n, c in sorted(dropping.items()))
            print(
                f"{size:>9,} records, {len(subjects):,} subjects, at {at.date()}: {shown} "
                f"({took * 1e6 / len(subjects):.0f} us per subject)"
            )
    verdict = "enough" if worst <= levels else "NOT enough: SQL answers would differ"
    print(f"most dropping passes any subject needed: {worst}; SQL's {levels} levels: {verdict}")
    return 0 if worst <= levels else 1


if __name__ == "__main__":
    raise SystemExit(main())
