"""Questions of the whole store on SQLite: the marketing list (``engine.may_email_all(at)``) and
every record processable for marketing (``engine.processable(purpose, at)``), beside the host's
alternative, a loop of single ``may_email`` decisions over every subject.

    python bench/whole_store.py [--quick] [--records N ...] [--postgresql N ...]

The stores are ``bench/worlds.py``'s cached SQLite files (default 15,000 and 150,000 records;
1,000,000 when given with ``--records`` or already cached, made otherwise, which takes many
minutes). Each figure is the median of 3 runs, in CPU seconds of the process (SQLite runs in
it), with the time per subject of the store. The loop of single decisions is timed over a
sample of subjects (every subject at the smallest size) and scaled to the store, and checked
to give the same addresses where it ran over every subject.

Beside them, a hand-written SQL statement for this one policy giving the same addresses
(checked equal before anything is timed): the marketing rule, retention and the
legitimate-interests window (the last interaction counting only records not past their own
due date, as ``bench/sweep.py``'s baseline reads it), restriction, objection, erasure and
suppression by address (stored entries, and any subject who gave the address and then
unsubscribed, objected to marketing or was erased), rows fetched, no objects built.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import worlds  # noqa: E402
from fairproc.adapters.sql import SqlStore  # noqa: E402
from sweep import FOUR_YEARS, INTERACTIONS, TEN_YEARS, TWELVE_MONTHS, bound  # noqa: E402

from fairproc import Engine  # noqa: E402
from fairproc.storage import instant_to_us, records_condition  # noqa: E402
from fairproc.whole_store import processable_node  # noqa: E402

AT = worlds.AT
RUNS = 3
SAMPLE = 2000


MARKETING_SOURCES = ("contact_form", "handbook_download", "live_chat", "multiquote", "quick_quote")
ENQUIRY_SOURCES = ("contact_form", "live_chat", "multiquote", "quick_quote", "search_follow_up")


def _listed(values: Any) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


def hand_sql(store: SqlStore) -> str:
    """The marketing list at ``:at`` for the shipped policy, written by hand."""
    r, c = store.records.name, store.categories.name
    e, s = store.events.name, store.suppression.name
    suppressing = _listed(worlds.POLICY.suppressing_purposes())
    # a suppressing event of subject ``x``: unsubscribed, objected to marketing, erased whole
    suppresses = (
        "(x.kind = 'unsubscribed' OR (x.kind = 'objected' AND (x.purpose IS NULL OR "
        f"x.purpose IN ({suppressing}))) OR (x.kind = 'erased' AND x.record IS NULL))"
    )
    let_recently = (
        f"EXISTS (SELECT 1 FROM {e} l WHERE l.subject = {{who}}.subject "
        "AND l.kind = 'office_let' AND l.at >= :ten_years AND l.at <= :at)"
    )
    return f"""
        SELECT DISTINCT c.norm FROM {r} r
        JOIN {c} c ON c.record_id = r.id AND c.category = 'email'
        WHERE r.source IN ({_listed(MARKETING_SOURCES)}) AND r.collected_at <= :at
          AND c.norm IS NOT NULL AND c.norm <> ''
          -- not erased
          AND NOT EXISTS (SELECT 1 FROM {e} x WHERE x.record = r.id AND x.subject = r.subject
                          AND x.kind = 'erased' AND x.at <= :at)
          -- no restriction in force
          AND coalesce((SELECT x.kind FROM {e} x WHERE x.subject = r.subject
                        AND x.kind IN ('restricted', 'restriction_lifted') AND x.at <= :at
                        ORDER BY x.at DESC, x.seq DESC LIMIT 1), '') <> 'restricted'
          -- not objected to marketing_updates, and the subject not suppressed
          AND NOT EXISTS (SELECT 1 FROM {e} x WHERE x.subject = r.subject AND x.at <= :at
                          AND ({suppresses} OR (x.kind = 'objected'
                                                AND x.purpose = 'marketing_updates')))
          -- the address not on the list: stored, or from any subject who gave it
          AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.email_norm = c.norm AND s.at <= :at)
          AND NOT EXISTS (SELECT 1 FROM {c} g JOIN {r} gr ON gr.id = g.record_id
                          JOIN {e} x ON x.subject = g.subject
                          WHERE g.norm = c.norm AND g.category = 'email'
                            AND x.at >= gr.collected_at AND x.at <= :at AND {suppresses})
          -- the window (and a handbook download's retention): an interaction since four
          -- years before: its own collection, an event, or a record not past its due date
          AND (r.collected_at >= :four_years
               OR EXISTS (SELECT 1 FROM {e} i WHERE i.subject = r.subject
                          AND i.kind IN ({_listed(INTERACTIONS)})
                          AND i.at >= :four_years AND i.at <= :at)
               OR EXISTS (SELECT 1 FROM {r} o WHERE o.subject = r.subject
                          AND o.collected_at >= :four_years AND o.collected_at <= :at
                          AND NOT (o.source = 'website_visit'
                                   AND o.collected_at < :twelve_months
                                   AND NOT {let_recently.format(who="o")})))
          -- an enquiry's retention: resolved ten years ago, unless a letting keeps it
          AND NOT (r.source IN ({_listed(ENQUIRY_SOURCES)})
                   AND coalesce((SELECT max(x.at) FROM {e} x WHERE x.record = r.id
                                 AND x.subject = r.subject AND x.kind = 'enquiry_resolved'
                                 AND x.at <= :at), :at) < :ten_years
                   AND NOT {let_recently.format(who="r")})
    """


def hand_params() -> dict[str, int]:
    return {
        "at": instant_to_us(AT),
        "twelve_months": bound(AT, TWELVE_MONTHS),
        "four_years": bound(AT, FOUR_YEARS),
        "ten_years": bound(AT, TEN_YEARS),
    }


def timed(fn: Any) -> tuple[float, Any]:
    """(median CPU seconds of this process over ``RUNS`` runs, the last result). SQLite runs
    in this process, so its work is counted; other work on the machine is not."""
    runs, result = [], None
    for _ in range(RUNS):
        started = time.process_time()
        result = fn()
        runs.append(time.process_time() - started)
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
        statement = sa.text(hand_sql(store))
        params = hand_params()

        def by_hand() -> list[str]:
            with store.engine.connect() as conn:
                return [row[0] for row in conn.execute(statement, params)]

        hand_s, by_hand_list = timed(by_hand)
        ours = {row.address for row in listed}
        if set(by_hand_list) != ours:
            raise SystemExit(
                f"the hand-written SQL gives other addresses at {n:,} records: "
                f"{len(set(by_hand_list) - ours)} more, {len(ours - set(by_hand_list))} fewer"
            )
        names = [f"s{i:07d}" for i in range(subjects)]
        everyone = subjects <= SAMPLE
        sample = names if everyone else random.Random(11).sample(names, SAMPLE)
        engine = Engine(policy, store)
        started = time.process_time()
        looped: set[str] = set()
        for subject in sample:
            looped.update(engine.may_email(subject, AT).addresses or ())
        loop_s = (time.process_time() - started) / len(sample) * subjects
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
            "hand_s": hand_s,
            "loop_scaled": not everyone,
        }
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="15,000 records only")
    parser.add_argument("--records", type=int, nargs="*", help="store sizes (records)")
    parser.add_argument(
        "--postgresql",
        type=int,
        nargs="*",
        metavar="N",
        help="also may_email_all on PostgreSQL at these sizes (FAIRPROC_TEST_POSTGRESQL_URL)",
    )
    args = parser.parse_args(argv)
    sizes = args.records or ([15_000] if args.quick else [15_000, 150_000])
    if not args.records and not args.quick:
        million = worlds.CACHE / f"sqlite-{worlds._key(1_000_000)}.db"
        if million.exists():
            sizes.append(1_000_000)
    rows = [measure(n) for n in sizes]
    print(
        f"whole-store questions on SQLite at {AT:%Y-%m-%d}: median of {RUNS} runs, CPU seconds "
        "(and microseconds per subject)"
    )
    print(
        f"{'records':>9} {'subjects':>9} {'SQL exact':>9} {'addresses':>9} "
        f"{'may_email_all':>22} {'hand SQL':>22} {'ratio':>6} {'processable':>22} "
        f"{'loop of may_email':>24}"
    )
    for r in rows:
        per = 1e6 / r["subjects"]
        loop = f"{r['loop_s']:8.2f} s ({r['loop_s'] * per:5.0f} us)" + (
            "*" if r["loop_scaled"] else " "
        )
        print(
            f"{r['records']:>9,} {r['subjects']:>9,} {r['exact']!s:>9} {r['addresses']:>9,} "
            f"{r['list_s']:8.2f} s ({r['list_s'] * per:5.0f} us) "
            f"{r['hand_s']:8.2f} s ({r['hand_s'] * per:5.0f} us) {r['list_s'] / r['hand_s']:5.1f}x "
            f"{r['allowed_s']:8.2f} s ({r['allowed_s'] * per:5.0f} us) {loop:>24}"
        )
    print(f"* timed over {SAMPLE:,} random subjects and scaled to every subject")
    if args.postgresql:
        print()
        postgresql(args.postgresql)
    return 0


def postgresql(sizes: list[int]) -> None:
    """``may_email_all`` on PostgreSQL beside the same hand-written statement (one run each,
    wall seconds: the server's work is not this process's CPU), in the tables
    ``bench/access.py`` and ``bench/worlds.py`` keep (loaded first when missing)."""
    import os

    url = os.environ.get("FAIRPROC_TEST_POSTGRESQL_URL") or (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    print("may_email_all on PostgreSQL: one run each, wall seconds")
    print(f"{'records':>9} {'addresses':>9} {'may_email_all':>14} {'hand SQL':>9} {'ratio':>6}")
    for n in sizes:
        store = worlds.sql_store(url, n, f"bench_v{worlds.VERSION}_n{n}_")
        try:
            started = time.perf_counter()
            listed = {row.address for row in Engine(worlds.POLICY, store).may_email_all(AT)}
            ours = time.perf_counter() - started
            started = time.perf_counter()
            with store.engine.connect() as conn:
                by_hand = {row[0] for row in conn.execute(sa.text(hand_sql(store)), hand_params())}
            hand = time.perf_counter() - started
        finally:
            store.close()
        if by_hand != listed:
            raise SystemExit(f"the hand-written SQL gives other addresses at {n:,} records")
        print(f"{n:>9,} {len(listed):>9,} {ours:>12.2f} s {hand:>7.2f} s {ours / hand:>5.1f}x")


if __name__ == "__main__":
    sys.exit(main())
