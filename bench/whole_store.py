"""Questions of the whole store on SQLite: the marketing list (``engine.may_email_all(at)``) and
every record processable for marketing (``engine.processable(purpose, at)``), beside the host's
alternative, a loop of single ``may_email`` decisions over every subject.

    python bench/whole_store.py [--quick] [--records N ...]

The stores are ``bench/worlds.py``'s cached SQLite files (default 15,000 and 150,000 records;
1,000,000 when given with ``--records`` or already cached, made otherwise, which takes many
minutes). Each figure is the median of 3 runs, wall time, with the time per subject of the
store. The loop of single decisions is timed over a sample of subjects (every subject at the
smallest size) and scaled to the store, and checked to give the same addresses where it ran
over every subject.

Not here: a hand-written SQL query giving the same addresses. The marketing rule reads the last
interaction, which counts only the records not themselves past their own due date (a fixpoint
over each subject's records); written by hand in SQL that is a query of its own to get right
and verify, not done yet.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import worlds  # noqa: E402
from fairproc.adapters.sql import SqlStore  # noqa: E402

from fairproc import Engine  # noqa: E402
from fairproc.store import records_condition  # noqa: E402
from fairproc.whole_store import processable_node  # noqa: E402

AT = worlds.AT
RUNS = 3
SAMPLE = 2000


def timed(fn: Any) -> tuple[float, Any]:
    runs, result = [], None
    for _ in range(RUNS):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), result


def measure(n: int) -> dict[str, Any]:
    store = SqlStore(f"sqlite:///{worlds.sqlite_path(n)}")
    try:
        subjects = worlds.counts(n)["subjects"]
        policy = worlds.POLICY
        purpose = policy.info.marketing_purpose
        assert purpose is not None
        condition = records_condition(processable_node(policy, purpose), policy)
        _, exact = store.explain(condition, AT, policy)
        listed_s, listed = timed(lambda: list(Engine(policy, store).may_email_all(AT)))
        allowed_s, allowed = timed(
            lambda: sum(1 for _ in Engine(policy, store).processable(purpose, AT))
        )
        names = [f"s{i:07d}" for i in range(subjects)]
        everyone = subjects <= SAMPLE
        sample = names if everyone else random.Random(11).sample(names, SAMPLE)
        engine = Engine(policy, store)
        started = time.perf_counter()
        looped: set[str] = set()
        for subject in sample:
            looped.update(engine.may_email(subject, AT).addresses or ())
        loop_s = (time.perf_counter() - started) / len(sample) * subjects
        if everyone:
            assert looped == {row.address for row in listed}, "the same marketing list"
        else:
            addresses = {row.address for row in listed}
            assert looped <= addresses, "every sampled subject's addresses are on the list"
        return {
            "records": n,
            "subjects": subjects,
            "exact": exact,
            "addresses": len(listed),
            "allowed": allowed,
            "list_s": listed_s,
            "allowed_s": allowed_s,
            "loop_s": loop_s,
            "loop_scaled": not everyone,
        }
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15,000 records only")
    parser.add_argument("--records", type=int, nargs="*", help="store sizes (records)")
    args = parser.parse_args(argv)
    sizes = args.records or ([15_000] if args.quick else [15_000, 150_000])
    if not args.records and not args.quick:
        million = worlds.CACHE / f"sqlite-{worlds._key(1_000_000)}.db"
        if million.exists():
            sizes.append(1_000_000)
    rows = [measure(n) for n in sizes]
    print(
        f"whole-store questions on SQLite at {AT:%Y-%m-%d}: median of {RUNS} runs, wall seconds "
        "(and microseconds per subject)"
    )
    print(
        f"{'records':>9} {'subjects':>9} {'SQL exact':>9} {'addresses':>9} "
        f"{'may_email_all':>22} {'processable':>22} {'loop of may_email':>24}"
    )
    for r in rows:
        per = 1e6 / r["subjects"]
        loop = f"{r['loop_s']:8.2f} s ({r['loop_s'] * per:5.0f} us)" + (
            "*" if r["loop_scaled"] else " "
        )
        print(
            f"{r['records']:>9,} {r['subjects']:>9,} {r['exact']!s:>9} {r['addresses']:>9,} "
            f"{r['list_s']:8.2f} s ({r['list_s'] * per:5.0f} us) "
            f"{r['allowed_s']:8.2f} s ({r['allowed_s'] * per:5.0f} us) {loop:>24}"
        )
    print(f"* timed over {SAMPLE:,} random subjects and scaled to every subject")
    return 0


if __name__ == "__main__":
    sys.exit(main())
