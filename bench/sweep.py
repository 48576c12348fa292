"""Retention sweeps over 10,000, 100,000 and 1,000,000 generated records, on the memory, SQLite
and CSV stores, each beside a hand-written baseline doing the same selection in the same run.

    python bench/sweep.py [--quick] [--sizes 10000,100000] [--adapters memory,sqlite,csv]

``--quick``: 10,000 and 100,000 records only. The world is ``bench/worlds.py``'s (about three
records per subject, instants 2012-2026); SQLite files and CSV folders are cached under
``/tmp/fairproc-bench/``, so the first run spends a few minutes making them.

What is timed, each case in a fresh Python process (so one case's memory cannot pollute
another's, and each peak is its own):

* fairproc: ``plan_sweep(engine, at)`` at 2026-11-25, a dry run (nothing is deleted);
* memory baseline: a plain Python loop over the same records, with the events grouped by
  subject beforehand as the store holds them: the reference policy's retention rules written
  by hand (cookies 12 months from collection, enquiries 10 years from their resolution,
  handbook downloads 4 years from the last interaction, 10 years from an office let, the
  longest governing; a record overdue by its own rule is no interaction, and a subject's
  handbook downloads fall due together), calendar arithmetic with dateutil's relativedelta
  on the London wall clock, as a careful hand writes it;
* SQLite baseline: one hand-written SQL statement selecting the due record ids, run through
  the ``sqlite3`` module. Each rule is an exact predicate on integer microseconds: ``x +
  period <= at`` is ``x < bound``, the bound found in Python with the hand-written calendar
  arithmetic (by bisection, then checked every 15 minutes for three days either side);
* CSV baseline: the same plain loop reading the CSV files with the ``csv`` module (events
  summarised per subject, then two passes over the records).

Before any time is reported, fairproc's due set must equal the baseline's (a digest of the
sorted ids): the times compare the same work. Printed per case: seconds, microseconds per
record in the store, the ratio to the baseline, and peak memory: the process's peak resident
set during the timed run (Linux ``VmHWM``, reset just before it) and how far that is above the
resident set when the run began. For CSV, one more (untimed) run under ``tracemalloc`` splits
the memory into the plan itself (its first 10,000 items held as objects, the rest spooled to
a temporary file, so it stops growing past them) and the working memory besides it. For
SQLite, after the timed runs, the statements one plan sends are run again through ``sqlite3``
alone: how much of the plan's time is the database's, and how much its Python. A case
expected to take more than ``--cap`` seconds (default 600) from the smaller sizes is not
run, and the table says so.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import hashlib
import json
import math
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dateutil.relativedelta import relativedelta

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import worlds  # noqa: E402
from fairproc.adapters.csv import CsvStore  # noqa: E402
from worlds import AT, ENQUIRY_SOURCES  # noqa: E402

from fairproc import Engine, Event, Record  # noqa: E402
from fairproc.storage import instant_to_us, us_to_instant  # noqa: E402
from fairproc.sweep import plan_sweep  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
ADAPTERS = ("memory", "sqlite", "csv")
REPEATS = {10_000: 11, 100_000: 5}  # larger: 1 run (medians of more runs: this machine is noisy)
CAP_SECONDS = 600.0

# --- the hand-written rules of the reference policy ------------------------------------------

LONDON = worlds.POLICY.tz
TWELVE_MONTHS = relativedelta(months=12)
FOUR_YEARS = relativedelta(years=4)
TEN_YEARS = relativedelta(years=10)
INTERACTIONS = frozenset({"website_visit", "staff_contact", "email_open", "email_click"})
ENQUIRY = frozenset(ENQUIRY_SOURCES)


def hand_add(instant: dt.datetime, delta: relativedelta) -> dt.datetime:
    """Calendar arithmetic on the London wall clock, as a careful hand would write it."""
    wall = instant.astimezone(LONDON).replace(tzinfo=None) + delta
    return wall.replace(tzinfo=LONDON)


def summarise(events: Iterable[Event], at: dt.datetime) -> tuple[Any, Any, dict[str, Any]]:
    """(last interaction event, latest office let, latest resolution per record) at ``at``."""
    last = let = None
    resolved: dict[str, dt.datetime] = {}
    for e in events:
        when = e.at
        if when > at:
            continue
        kind = e.kind
        if kind in INTERACTIONS:
            if last is None or when > last:
                last = when
        elif kind == "office_let":
            if let is None or when > let:
                let = when
        elif kind == "enquiry_resolved" and e.record is not None:
            old = resolved.get(e.record)
            if old is None or when > old:
                resolved[e.record] = when
    return last, let, resolved


def hand_due(
    record_id: str,
    source: str,
    collected: dt.datetime,
    summary: tuple[Any, Any, dict[str, Any]],
    last_collection: dt.datetime | None,
    at: dt.datetime,
) -> bool:
    """Whether the record is due for deletion at ``at``: the rule keeping it longest has run
    out. Phone calls have no period (review), unresolved enquiries are kept with no date."""
    last, let, resolved = summary
    if source == "website_visit":
        until = hand_add(collected, TWELVE_MONTHS)
    elif source in ENQUIRY:
        when = resolved.get(record_id)
        if when is None:
            return False
        until = hand_add(when, TEN_YEARS)
    elif source == "handbook_download":
        anchor = max((t for t in (last, last_collection) if t is not None), default=None)
        if anchor is None:
            return False
        until = hand_add(anchor, FOUR_YEARS)
    else:  # phone_call: no period declared, so review (a letting can only keep it)
        return False
    if let is not None:
        letting = hand_add(let, TEN_YEARS)
        if letting.timestamp() > until.timestamp():
            until = letting
    return until <= at


def baseline_memory(
    records: Sequence[Record], events_by_subject: dict[str, list[Event]], at: dt.datetime
) -> list[str]:
    summaries: dict[str, tuple[Any, Any, dict[str, Any]]] = {}

    def summary_of(subject: str) -> tuple[Any, Any, dict[str, Any]]:
        found = summaries.get(subject)
        if found is None:
            found = summaries[subject] = summarise(events_by_subject.get(subject, ()), at)
        return found

    # A collection counts as an interaction unless its record is overdue by its own rule; a
    # subject's handbook downloads all count (they fall due together, from the latest).
    last_collection: dict[str, dt.datetime] = {}
    for r in records:
        c = r.collected_at
        if c <= at and (
            r.source == "handbook_download"
            or not hand_due(r.id, r.source, c, summary_of(r.subject), None, at)
        ):
            old = last_collection.get(r.subject)
            if old is None or c > old:
                last_collection[r.subject] = c
    due = []
    for r in records:
        if r.source == "phone_call":
            continue
        summary = summary_of(r.subject)
        if hand_due(r.id, r.source, r.collected_at, summary, last_collection.get(r.subject), at):
            due.append(r.id)
    return due


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def baseline_csv(folder: Path, at: dt.datetime) -> list[str]:
    """The plain loop over the CSV files: events.csv once, records.csv twice."""
    events: dict[str, list[Event]] = {}
    with open(folder / "events.csv", encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for subject, kind, when, record, _purpose, _id in rows:
            if kind in INTERACTIONS or kind == "office_let" or kind == "enquiry_resolved":
                events.setdefault(subject, []).append(
                    Event(subject, kind, _instant(when), record or None)
                )
    summaries = {s: summarise(evs, at) for s, evs in events.items()}
    none: tuple[Any, Any, dict[str, Any]] = (None, None, {})
    # A collection counts unless its record is overdue by its own rule (handbook downloads
    # fall due together, so each counts), as baseline_memory reads it.
    last_collection: dict[str, dt.datetime] = {}
    with open(folder / "records.csv", encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for rid, subject, source, collected, _data in rows:
            c = _instant(collected)
            if c <= at and (
                source == "handbook_download"
                or not hand_due(rid, source, c, summaries.get(subject, none), None, at)
            ):
                old = last_collection.get(subject)
                if old is None or c > old:
                    last_collection[subject] = c
    due = []
    with open(folder / "records.csv", encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for rid, subject, source, collected, _data in rows:
            if source == "phone_call":
                continue
            summary = summaries.get(subject, none)
            if hand_due(
                rid, source, _instant(collected), summary, last_collection.get(subject), at
            ):
                due.append(rid)
    return due


def bound(at: dt.datetime, delta: relativedelta) -> int:
    """The smallest instant x (microseconds) with ``hand_add(x, delta) > at``: ``x + delta <=
    at`` is then ``x < bound``. Checked every 15 minutes for three days either side, so a
    non-monotonic stretch (clocks going back) near the bound would be caught."""

    def due(x: int) -> bool:
        return hand_add(us_to_instant(x), delta) <= at

    day = 86_400 * 10**6
    target = instant_to_us(at)
    longest = (delta.years * 366 + delta.months * 31 + 2) * day
    shortest = (delta.years * 365 + delta.months * 28 - 2) * day
    lo, hi = target - longest, target - shortest
    assert due(lo) and not due(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if due(mid):
            lo = mid
        else:
            hi = mid
    step = 15 * 60 * 10**6
    for x in range(hi - 3 * day, hi + 3 * day, step):
        assert due(x) == (x < hi), f"{delta} is not monotonic near the bound"
    return hi


def baseline_sql(at: dt.datetime) -> tuple[str, dict[str, Any]]:
    """The hand-written statement and its parameters (tables of the default prefix)."""
    enquiry = ", ".join(f"'{s}'" for s in ENQUIRY_SOURCES)
    interactions = ", ".join(f"'{s}'" for s in sorted(INTERACTIONS))
    sql = f"""
        SELECT r.id FROM fairproc_records r
        WHERE r.source <> 'phone_call'
          AND NOT EXISTS (SELECT 1 FROM fairproc_events l
                          WHERE l.subject = r.subject AND l.kind = 'office_let'
                            AND l.at >= :ten_years AND l.at <= :at)
          AND (
            (r.source = 'website_visit' AND r.collected_at < :twelve_months)
            OR (r.source IN ({enquiry})
                AND (SELECT max(e.at) FROM fairproc_events e
                     WHERE e.record = r.id AND e.subject = r.subject
                       AND e.kind = 'enquiry_resolved' AND e.at <= :at) < :ten_years)
            OR (r.source = 'handbook_download' AND r.collected_at <= :at
                AND NOT EXISTS (SELECT 1 FROM fairproc_events i
                                WHERE i.subject = r.subject AND i.kind IN ({interactions})
                                  AND i.at >= :four_years AND i.at <= :at)
                AND NOT EXISTS (SELECT 1 FROM fairproc_records c
                                WHERE c.subject = r.subject
                                  AND c.collected_at >= :four_years AND c.collected_at <= :at
                                  -- an overdue record is no interaction
                                  AND NOT (c.source = 'website_visit'
                                           AND c.collected_at < :twelve_months)
                                  AND NOT (c.source IN ({enquiry})
                                           AND coalesce((SELECT max(ce.at)
                                                         FROM fairproc_events ce
                                                         WHERE ce.record = c.id
                                                           AND ce.subject = c.subject
                                                           AND ce.kind = 'enquiry_resolved'
                                                           AND ce.at <= :at), :at)
                                               < :ten_years)))
          )
        ORDER BY r.seq
    """
    params = {
        "at": instant_to_us(at),
        "twelve_months": bound(at, TWELVE_MONTHS),
        "four_years": bound(at, FOUR_YEARS),
        "ten_years": bound(at, TEN_YEARS),
    }
    return sql, params


# --- one case, in its own process ------------------------------------------------------------


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in kB (0 where there is none)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    m = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _warm_files(paths: Iterable[Path]) -> None:
    """Read files once so the OS caches them for every case alike."""
    for path in paths:
        for p in [path] if path.is_file() else sorted(path.glob("*")):
            if p.is_file():
                with open(p, "rb") as f:
                    while f.read(1 << 24):
                        pass


def run_case(adapter: str, kind: str, n: int, repeat: int) -> dict[str, Any]:
    """Load, then time ``repeat`` runs of the sweep (kind ``fairproc``) or the baseline."""
    run: Callable[[], list[str]]
    afterwards: Callable[[], dict[str, Any]] = dict
    if adapter == "memory":
        world = worlds.generate(n)
        if kind == "fairproc":
            engine = Engine(worlds.POLICY, worlds.memory_store(world))
            del world

            def run() -> list[str]:
                return [item.record for item in plan_sweep(engine, AT).items]

        else:
            records = world.records
            by_subject: dict[str, list[Event]] = {}
            for e in world.events:
                by_subject.setdefault(e.subject, []).append(e)
            del world

            def run() -> list[str]:
                return baseline_memory(records, by_subject, AT)

    elif adapter == "sqlite":
        path = worlds.sqlite_path(n)
        _warm_files([path])
        if kind == "fairproc":
            from fairproc.adapters.sql import SqlStore

            store = SqlStore(f"sqlite:///{path}")
            engine = Engine(worlds.POLICY, store)

            def run() -> list[str]:
                return [item.record for item in plan_sweep(engine, AT).items]

            def afterwards() -> dict[str, Any]:  # after the timed runs: they start cold
                return {"database_seconds": _database_seconds(store, path, repeat)}

        else:
            sql, params = baseline_sql(AT)
            conn = sqlite3.connect(path)

            def run() -> list[str]:
                return [row[0] for row in conn.execute(sql, params)]

    else:
        folder = worlds.csv_folder(n)
        _warm_files([folder])
        if kind == "fairproc":
            engine = Engine(worlds.POLICY, CsvStore(folder))

            def run() -> list[str]:
                return [item.record for item in plan_sweep(engine, AT).items]

        else:

            def run() -> list[str]:
                return baseline_csv(folder, AT)

    gc.collect()
    rss_before = _status("VmRSS")
    peak_reset = _reset_peak()
    times = []
    due: list[str] = []
    for _ in range(repeat):
        due = []
        gc.collect()
        started = time.perf_counter()
        due = run()
        times.append(time.perf_counter() - started)
    peak = _status("VmHWM")
    digest = hashlib.sha256("\n".join(sorted(due)).encode()).hexdigest()
    answer = {
        "seconds": statistics.median(times),
        "runs": times,
        "due": len(due),
        "digest": digest,
        "rss_before_mb": rss_before / 1024,
        "peak_mb": peak / 1024 if peak_reset else math.nan,
        **afterwards(),
    }
    if adapter == "csv" and kind == "fairproc":
        # One more run, traced (slower, untimed): how much of the peak is the plan itself
        # (at most its first 10,000 items as objects; the rest is spooled to a file).
        tracemalloc.start()
        plan = plan_sweep(Engine(worlds.POLICY, CsvStore(folder)), AT)
        held, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del plan
        answer["plan_mb"] = held / 2**20
        answer["working_mb"] = (top - held) / 2**20
    return answer


def _database_seconds(store: Any, path: Path, repeat: int) -> float:
    """How long the database itself takes over a plan: the statements one plan runs, caught
    as SQLAlchemy sends them, run again through ``sqlite3`` with their rows fetched (median
    of ``repeat``). What the plan takes beyond this is its Python: building the statements,
    deciding each due record's rule and date, making the items."""
    import sqlalchemy as sa

    sent: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", catch)
    plan_sweep(Engine(worlds.POLICY, store), AT)
    sa.event.remove(store.engine, "before_cursor_execute", catch)
    conn = sqlite3.connect(path)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute("BEGIN")  # one read transaction, as the plan's reading() has
        for statement, parameters in sent:
            conn.execute(statement, parameters).fetchall()
        conn.execute("COMMIT")
        times.append(time.perf_counter() - started)
    conn.close()
    return statistics.median(times)


# --- the driver ------------------------------------------------------------------------------


def _child(args: list[str], timeout: float) -> dict[str, Any] | str:
    """Run this script with ``args`` in a fresh process: its JSON answer, or why there is none."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"stopped after {timeout / 60:.0f} min"
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        return f"failed (exit {done.returncode})"
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _mb(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 records only")
    parser.add_argument("--sizes", help="comma-separated record counts (default 10k,100k,1M)")
    parser.add_argument("--adapters", default=",".join(ADAPTERS), help="memory,sqlite,csv")
    parser.add_argument("--cap", type=float, default=CAP_SECONDS, help="seconds per case, at most")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # adapter:kind:n:repeat (internal)
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # adapter:n (internal)
    args = parser.parse_args(argv)

    if args.case:
        adapter, kind, n, repeat = args.case.split(":")
        print(json.dumps(run_case(adapter, kind, int(n), int(repeat))))
        return 0
    if args.prepare:
        adapter, n = args.prepare.split(":")
        (worlds.sqlite_path if adapter == "sqlite" else worlds.csv_folder)(int(n))
        print("{}")
        return 0

    sizes = (
        tuple(int(s) for s in args.sizes.split(","))
        if args.sizes
        else SIZES[:2]
        if args.quick
        else SIZES
    )
    adapters = [a for a in args.adapters.split(",") if a]
    unknown = set(adapters) - set(ADAPTERS)
    if unknown:
        parser.error(f"unknown adapters {sorted(unknown)}; expected {ADAPTERS}")

    print(
        f"retention sweep (plan_sweep, a dry run) at {AT:%Y-%m-%d}; "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    rows: list[tuple[str, int, str, Any, Any]] = []
    per_record: dict[tuple[str, int], float] = {}
    failures = 0
    for adapter in adapters:
        for n in sizes:
            repeat = REPEATS.get(n, 1)
            label = f"{adapter} {n:,}"
            estimate = _estimate(per_record, adapter, n)
            if estimate is not None and estimate > args.cap:
                reason = (
                    f"not run: expected about {estimate / 60:.0f} min from the smaller sizes "
                    f"(cap {args.cap / 60:.0f} min)"
                )
                print(f"  {label}: {reason}", file=sys.stderr, flush=True)
                rows.append((adapter, n, reason, None, None))
                continue
            if adapter != "memory":
                made = _child(["--prepare", f"{adapter}:{n}"], timeout=3 * 3600)
                if isinstance(made, str):
                    rows.append((adapter, n, f"could not make the store: {made}", None, None))
                    failures += 1
                    continue
            limit = max(args.cap, 3 * (estimate or 0)) * repeat + 600  # loading, warming
            print(f"  {label}: baseline ...", file=sys.stderr, flush=True)
            base = _child(["--case", f"{adapter}:baseline:{n}:{repeat}"], limit)
            print(f"  {label}: fairproc ...", file=sys.stderr, flush=True)
            ours = _child(["--case", f"{adapter}:fairproc:{n}:{repeat}"], limit)
            if isinstance(ours, dict):
                per_record[(adapter, n)] = ours["seconds"] / n
            both = isinstance(ours, dict) and isinstance(base, dict)
            if both and ours["digest"] != base["digest"]:
                print(
                    f"{label}: fairproc found {ours['due']:,} due, the baseline "
                    f"{base['due']:,}: the due sets differ",
                    file=sys.stderr,
                )
                failures += 1
                rows.append((adapter, n, "due sets differ", ours, base))
                continue
            rows.append((adapter, n, "", ours, base))

    print()
    header = (
        f"{'adapter':<7} {'records':>9} {'due':>7} {'runs':>4} {'fairproc':>9} "
        f"{'us/rec':>7} {'baseline':>9} {'us/rec':>7} {'ratio':>6}  "
        f"{'fairproc peak (+run)':>21}  {'baseline peak (+run)':>21}"
    )
    print(header)
    print("-" * len(header))
    for adapter, n, note, ours, base in rows:
        head = f"{adapter:<7} {n:>9,}"
        if note and not (isinstance(ours, dict) and isinstance(base, dict)):
            print(f"{head}  {note}")
            continue
        if not isinstance(ours, dict) or not isinstance(base, dict):
            print(
                f"{head}  fairproc: {ours if isinstance(ours, str) else 'ok'}; "
                f"baseline: {base if isinstance(base, str) else 'ok'}"
            )
            continue
        ratio = ours["seconds"] / base["seconds"]
        print(
            f"{head} {ours['due']:>7,} {len(ours['runs']):>4} {ours['seconds']:>8.2f}s "
            f"{ours['seconds'] / n * 1e6:>7.1f} {base['seconds']:>8.2f}s "
            f"{base['seconds'] / n * 1e6:>7.1f} {ratio:>5.1f}x  "
            f"{_peak(ours):>21}  {_peak(base):>21}" + (f"  {note}" if note else "")
        )
    _targets(rows)
    return 1 if failures else 0


def _peak(case: dict[str, Any]) -> str:
    peak = case["peak_mb"]
    if math.isnan(peak):
        return "n/a"
    return f"{_mb(peak)} (+{max(0.0, peak - case['rss_before_mb']):,.0f})"


def _estimate(per_record: dict[tuple[str, int], float], adapter: str, n: int) -> float | None:
    """Seconds a run over ``n`` records should take, from the two largest smaller sizes
    measured (cost per record extrapolated by its growth), or None before two are known."""
    known = sorted((m, t) for (a, m), t in per_record.items() if a == adapter and m < n)
    if not known:
        return None
    m, t = known[-1]
    growth = 1.0
    if len(known) >= 2:
        m0, t0 = known[-2]
        growth = max(1.0, (t / t0) ** (math.log(n / m) / math.log(m / m0)))
    return t * growth * n


def _targets(rows: Sequence[tuple[str, int, str, Any, Any]]) -> None:
    """The issue's targets, each met or missed by how much."""
    ok = {
        (a, n): (o, b)
        for a, n, note, o, b in rows
        if not note and isinstance(o, dict) and isinstance(b, dict)
    }
    print()
    print("targets")
    for adapter, limit, what in (
        ("sqlite", 1.5, "hand-written SQL"),
        ("memory", 2.0, "plain loop"),
    ):
        ratios = {n: o["seconds"] / b["seconds"] for (a, n), (o, b) in ok.items() if a == adapter}
        if ratios:
            worst = max(ratios.values())
            verdict = "met" if worst <= limit else f"missed (worst {worst:.1f}x)"
            shown = ", ".join(f"{n:,}: {r:.1f}x" for n, r in sorted(ratios.items()))
            print(f"  {adapter} within {limit}x of the {what}: {verdict} ({shown})")
            if adapter == "sqlite":
                for (a, n), (o, b) in sorted(ok.items()):
                    if a == adapter and "database_seconds" in o:
                        db = o["database_seconds"]
                        print(
                            f"    {n:,}: the plan's statements alone, run through sqlite3: "
                            f"{db:.3f}s ({db / b['seconds']:.2f}x the hand-written one); "
                            f"Python besides: {o['seconds'] - db:.3f}s for {o['due']:,} due "
                            f"({(o['seconds'] - db) / max(1, o['due']) * 1e6:.1f} us each)"
                        )
    for adapter in ADAPTERS:
        costs = {n: o["seconds"] / n for (a, n), (o, _) in ok.items() if a == adapter}
        if len(costs) >= 2:
            lo, hi = min(costs), max(costs)
            growth = costs[hi] / costs[lo]
            verdict = "met" if growth <= 1.5 else "missed"
            print(
                f"  {adapter}: cost per record {lo:,} -> {hi:,} records: {growth:.2f}x "
                f"(target within 1.5x): {verdict}"
            )
    csv_runs = {n: o for (a, n), (o, _) in ok.items() if a == "csv"}
    if len(csv_runs) >= 2:
        lo, hi = min(csv_runs), max(csv_runs)
        low, high = csv_runs[lo], csv_runs[hi]
        print(
            f"  csv peak memory {lo:,} -> {hi:,} records: {_mb(low['peak_mb'])} -> "
            f"{_mb(high['peak_mb'])} ({high['peak_mb'] / low['peak_mb']:.2f}x; target: not "
            "growing with the file)"
        )
        if all("plan_mb" in o for o in csv_runs.values()):
            shown = ", ".join(
                f"{n:,}: {o['working_mb']:,.0f} MB besides a plan of {o['plan_mb']:,.0f} MB"
                for n, o in sorted(csv_runs.items())
            )
            print(f"    of which, traced by tracemalloc: {shown}")


if __name__ == "__main__":
    sys.exit(main())
