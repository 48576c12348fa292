"""An access request for one subject among 1,000,000 records, on SQLite and PostgreSQL, beside
a hand-written SQL lookup of the same subject in the same run.

    python bench/access.py [--quick] [--records N] [--drop]

``--quick``: 100,000 records. The world is ``bench/worlds.py``'s. The SQLite file is the one
``bench/sweep.py`` caches under ``/tmp/fairproc-bench/``; PostgreSQL is the database
``FAIRPROC_TEST_POSTGRESQL_URL`` names (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), in tables of their own
(``bench_v<version>_n<records>_*``, or ``--prefix``'s instead of ``bench_``: on a shared server,
one of your own), loaded once and kept for later runs; ``--drop`` drops
them afterwards. Without a reachable server the PostgreSQL row says why.

Timed, warm (ten lookups first), each the median over 50 random subjects, a different 50 for
each column so that no answer comes from the engine's cache:

* ``plan_request``: ``plan_request(engine, subject, "access", at, verified=True)``: the whole
  access copy (every record with its purposes, recipients and retention, every event);
* ``history``: ``engine.history(subject)``, the lookup the request starts with: the subject's
  records and events, and the suppression entries for their emails;
* ``hand-written SQL``: two statements on one open connection, the subject's records and its
  events by the subject index, rows fetched (no JSON decoded, no objects built).

Beside the times, the statements one ``engine.history`` sends, and its transaction's begin and
end: on a database server each is a round trip.

Target: an access request under 20 ms at 1,000,000 records on SQLite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import worlds  # noqa: E402
from fairproc.adapters.sql import SqlStore  # noqa: E402

from fairproc import Engine  # noqa: E402
from fairproc.rights import plan_request  # noqa: E402
from fairproc.storage import StoreError  # noqa: E402

AT = worlds.AT
POSTGRESQL_ENV = "FAIRPROC_TEST_POSTGRESQL_URL"
POSTGRESQL_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SAMPLES = 50
WARM = 10
TARGET_MS = 20.0


def prefix(n: int, base: str = "bench_") -> str:
    return f"{base}v{worlds.VERSION}_n{n}_"


SPREAD: dict[str, tuple[float, float]] = {}  # column: (p90, slowest) of the last measure


def median_ms(fn: Callable[[str], Any], subjects: list[str], column: str = "") -> float:
    times = []
    for subject in subjects:
        started = time.perf_counter()
        fn(subject)
        times.append(time.perf_counter() - started)
    ms = sorted(t * 1000 for t in times)
    SPREAD[column] = (statistics.quantiles(ms, n=10)[-1], ms[-1])
    return statistics.median(ms)


def statements(store: SqlStore, subject: str) -> tuple[int, int]:
    """(statements, transaction begins and ends) one ``engine.history`` of ``subject`` sends, on
    an engine of its own (nothing cached): on a database server, each is a round trip."""
    counts = {"statements": 0, "transaction": 0}

    def statement(*_: Any) -> None:
        counts["statements"] += 1

    def transaction(*_: Any) -> None:
        counts["transaction"] += 1

    engine = Engine(worlds.POLICY, store)  # made first: what making it reads is not counted
    hooks = [("before_cursor_execute", statement)]
    hooks += [(name, transaction) for name in ("begin", "commit", "rollback")]
    for name, fn in hooks:
        sa.event.listen(store.engine, name, fn)
    try:
        engine.history(subject)
    finally:
        for name, fn in hooks:
            sa.event.remove(store.engine, name, fn)
    return counts["statements"], counts["transaction"]


def measure(store: SqlStore, n: int) -> dict[str, float]:
    engine = Engine(worlds.POLICY, store)
    total = worlds.counts(n)["subjects"]
    rng = random.Random(7)
    picks = [f"s{i:07d}" for i in rng.sample(range(total), WARM + 3 * SAMPLES)]
    warm, a, b, c = (
        picks[:WARM],
        picks[WARM : WARM + SAMPLES],
        picks[WARM + SAMPLES : WARM + 2 * SAMPLES],
        picks[WARM + 2 * SAMPLES :],
    )
    records, events = store.records.name, store.events.name
    by_subject = (
        sa.text(
            f"SELECT id, subject, source, collected_at, data FROM {records} "
            "WHERE subject = :s ORDER BY seq"
        ),
        sa.text(
            f"SELECT id, subject, kind, at, record, purpose FROM {events} "
            "WHERE subject = :s ORDER BY seq"
        ),
    )
    sizes: list[int] = []
    with store.engine.connect() as conn:

        def hand(subject: str) -> int:
            rows = 0
            for statement in by_subject:
                rows += len(conn.execute(statement, {"s": subject}).all())
            return rows

        def request(subject: str) -> Any:
            result = plan_request(engine, subject, "access", AT, verified=True)
            assert result.decision.outcome == "granted" and result.export is not None
            sizes.append(len(result.export["records"]) + len(result.export["events"]))
            return result

        for subject in warm:
            request(subject)
            engine.history(subject)
            hand(subject)
        # the answers agree: the same records and events, whichever way they are read
        for subject in a[:5]:
            history = Engine(worlds.POLICY, store).history(subject)
            assert hand(subject) == len(history.records) + len(history.events)
        sizes.clear()
        found = {
            "plan_request": median_ms(request, a, "plan_request"),
            "history": median_ms(engine.history, b, "history"),
            "hand": median_ms(hand, c, "hand"),
            "rows": statistics.mean(sizes),
        }
        found["statements"], found["transaction"] = statements(store, a[0])
        for column, (p90, slowest) in SPREAD.items():
            found[f"{column} p90"], found[f"{column} max"] = p90, slowest
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 records")
    parser.add_argument("--records", type=int, help="records in the store (default 1,000,000)")
    parser.add_argument("--drop", action="store_true", help="drop the PostgreSQL tables after")
    parser.add_argument(
        "--prefix",
        default="bench_",
        help="the PostgreSQL tables' prefix (default bench_; a shared server: one of your own)",
    )
    args = parser.parse_args(argv)
    n = args.records or (100_000 if args.quick else 1_000_000)

    rows: list[tuple[str, dict[str, float] | str]] = []
    sqlite = SqlStore(f"sqlite:///{worlds.sqlite_path(n)}")
    try:
        rows.append(("sqlite", measure(sqlite, n)))
    finally:
        sqlite.close()
    url = os.environ.get(POSTGRESQL_ENV) or POSTGRESQL_DEFAULT
    try:
        pg = worlds.sql_store(url, n, prefix(n, args.prefix))
    except StoreError as error:
        rows.append(("postgresql", f"not measured: {error}"))
    else:
        try:
            rows.append(("postgresql", measure(pg, n)))
            if args.drop:
                pg.drop_tables()
        finally:
            pg.close()

    print(
        f"access request for one subject among {n:,} records, at {AT:%Y-%m-%d}; median of "
        f"{SAMPLES} random subjects each, warm (milliseconds)"
    )
    header = (
        f"{'store':<10} {'rows/subject':>12} {'plan_request':>13} {'history':>9} "
        f"{'hand SQL':>9} {'request/hand':>13} {'history/hand':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, found in rows:
        if isinstance(found, str):
            print(f"{name:<10} {found}")
            continue
        print(
            f"{name:<10} {found['rows']:>12.1f} {found['plan_request']:>10.2f} ms "
            f"{found['history']:>6.2f} ms {found['hand']:>6.2f} ms "
            f"{found['plan_request'] / found['hand']:>12.1f}x "
            f"{found['history'] / found['hand']:>12.1f}x"
        )
    print(f"spread: p90 / slowest of the same {SAMPLES} lookups (milliseconds)")
    for name, found in rows:
        if isinstance(found, dict):
            print(
                f"{name:<10} "
                + "  ".join(
                    f"{column} {found[f'{column} p90']:.2f} / {found[f'{column} max']:.2f}"
                    for column in ("plan_request", "history", "hand")
                )
            )
    print("round trips: what one engine.history sends (statements + transaction begin and end)")
    for name, found in rows:
        if isinstance(found, dict):
            print(f"{name:<10} {found['statements']:.0f} + {found['transaction']:.0f}")
    sqlite_row = dict(rows).get("sqlite")
    if isinstance(sqlite_row, dict):
        took = sqlite_row["plan_request"]
        verdict = "met" if took < TARGET_MS else f"missed by {took / TARGET_MS:.1f}x"
        scale = "" if n == 1_000_000 else f" (measured at {n:,} records, not 1,000,000)"
        print(f"target: under {TARGET_MS:.0f} ms on SQLite: {verdict} ({took:.2f} ms){scale}")
    if not args.drop and any(name == "postgresql" and isinstance(f, dict) for name, f in rows):
        kept = prefix(n, args.prefix)
        print(f"(PostgreSQL tables {kept}* kept for the next run; --drop removes them)")
    return 0


if __name__ == "__main__":
    started = dt.datetime.now()
    sys.exit(main())
