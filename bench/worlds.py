"""Generated worlds for the reference policy, for the benchmarks, and the stores that hold them.

    python bench/worlds.py [N]            # generate N records (default 10,000) and describe them

``generate(n)`` makes ``n`` records over about ``n / 3`` subjects, deterministic for a given
``n`` and seed: sources mixed as an office broker's are (website visits, quick quotes,
multiquotes, live chats, contact forms, handbook downloads, search follow-ups, phone calls),
each record holding the categories its source collects; a timeline per subject (enquiries
resolved, emails opened and clicked, website visits, calls with staff, cookie choices, some
offices let, some unsubscribes and objections, each unsubscribe also on the suppression list);
instants spread over 2012-01-01 to 2026-11-20, more of them recent, so that a sweep at
:data:`AT` (2026-11-25) finds about a third of the records due.

Stores (each verified after loading: sampled records, timelines and suppression entries read
back equal to what was generated):

* ``memory_store(world)``: a ``MemoryStore`` loaded through ``apply`` in change sets of 20,000
  records;
* ``sqlite_path(n)``: a SQLite file cached under ``/tmp/fairproc-bench/`` (keyed by ``n``, the
  seed and :data:`VERSION`), loaded through the store's ``apply`` in change sets of 20,000
  records, so the rows are exactly the adapter's own;
* ``csv_folder(n)``: a CSV store folder cached there too, written row by row with the adapter's
  own row functions (``apply`` rewrites the whole records file per change set, so loading a
  million records through it would take hours);
* ``sql_store(url, n, prefix)``: any SQL database (PostgreSQL for the access benchmark),
  cached under a table prefix naming the world, reloaded when its counts do not match.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
from fairproc.adapters.csv import HEADERS, CsvStore
from fairproc.adapters.memory import MemoryStore
from fairproc.adapters.sql import SqlStore

from fairproc import Event, Record, load_policy
from fairproc.model import SuppressionEntry
from fairproc.storage import ChangeSet, normalise_data

UTC = dt.UTC
VERSION = 1  # bump when the generator changes: cached stores are keyed by it
SEED = 20261125
CACHE = Path(os.environ.get("FAIRPROC_BENCH_CACHE", "/tmp/fairproc-bench"))
AT = dt.datetime(2026, 11, 25, tzinfo=UTC)  # when the benchmarks sweep
START = dt.datetime(2012, 1, 1, tzinfo=UTC)
END = dt.datetime(2026, 11, 20, tzinfo=UTC)  # nothing happens later than this
LOAD_CHUNK = 20_000

POLICY = load_policy("flexioffices")
ENQUIRY_SOURCES = ("contact_form", "quick_quote", "multiquote", "live_chat", "search_follow_up")
SOURCES = (
    ("website_visit", 26),
    ("quick_quote", 15),
    ("handbook_download", 14),
    ("contact_form", 11),
    ("phone_call", 9),
    ("multiquote", 9),
    ("live_chat", 9),
    ("search_follow_up", 7),
)
INTERACTIONS = (
    ("email_open", 40),
    ("website_visit", 30),
    ("email_click", 15),
    ("staff_contact", 15),
)
RECORDS_PER_SUBJECT = ((1, 20), (2, 25), (3, 22), (4, 15), (5, 10), (6, 8))  # mean 2.94
CITIES = ("London", "Manchester", "Leeds", "Bristol", "Birmingham", "Glasgow", "Edinburgh")
AREAS = ("Shoreditch", "Soho", "the City", "Canary Wharf", "King's Cross", "Holborn")
BUSINESSES = ("software", "design agency", "law firm", "recruitment", "consultancy", "charity")
REASONS = ("growing team", "lease ending", "downsizing", "new office", "closer to clients")
DRIVERS = ("price", "transport", "flexibility", "meeting rooms", "parking", "break-out space")
NAMES = ("Ada", "Grace", "Alan", "Katherine", "Tim", "Mary", "Charles", "Sophie", "Rosalind")
SURNAMES = ("Lovelace", "Hopper", "Turing", "Johnson", "Berners-Lee", "Somerville", "Franklin")


@attrs.frozen
class GeneratedWorld:
    n: int
    records: list[Record]  # in insertion order (collected_at order); ids r0000000, ...
    events: list[Event]  # in insertion order (time order)
    suppression: list[SuppressionEntry]
    subjects: list[str]

    def describe(self) -> str:
        sources = Counter(r.source for r in self.records)
        kinds = Counter(e.kind for e in self.events)
        years = Counter(r.collected_at.year for r in self.records)
        return "\n".join(
            [
                f"{len(self.records):,} records, {len(self.subjects):,} subjects, "
                f"{len(self.events):,} events, {len(self.suppression):,} suppression entries",
                "sources: " + ", ".join(f"{k} {v:,}" for k, v in sources.most_common()),
                "events: " + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()),
                "records by year: " + ", ".join(f"{y} {years[y]:,}" for y in sorted(years)),
            ]
        )


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]], k: int) -> list[str]:
    return rng.choices([v for v, _ in table], [w for _, w in table], k=k)


def _data(rng: random.Random, source: str, subject: str, person: tuple[str, str, str]) -> dict:
    name, email, phone = person
    company = f"{rng.choice(SURNAMES)} {rng.choice(('Ltd', 'LLP', 'plc', '& Co'))}"
    if source == "website_visit":
        data: dict[str, object] = {"ip_address": f"203.0.{rng.randrange(256)}.{rng.randrange(256)}"}
        if rng.random() < 0.3:
            data["mac_address"] = ":".join(f"{rng.randrange(256):02x}" for _ in range(6))
        return data
    if source == "handbook_download":
        return {"name": name, "email": email, "phone": phone}
    if source == "contact_form":
        return {
            "name": name,
            "company_name": company,
            "email": email,
            "phone": phone,
            "enquiry_nature": f"Office for {rng.randrange(2, 60)} people in {rng.choice(AREAS)}",
        }
    if source in ("quick_quote", "multiquote", "live_chat"):
        return {
            "name": name,
            "company_name": company,
            "phone": phone,
            "email": email,
            "office_size": rng.randrange(1, 120),
            "office_location": f"{rng.choice(AREAS)}, {rng.choice(CITIES)}",
        }
    if source == "search_follow_up":
        return {
            "current_office_address": f"{rng.randrange(1, 300)} High Street, {rng.choice(CITIES)}",
            "company_name": company,
            "business_type": rng.choice(BUSINESSES),
            "move_reasons": rng.choice(REASONS),
            "start_date": f"20{rng.randrange(12, 27)}-{rng.randrange(1, 13):02d}-01",
            "budget": rng.randrange(500, 50_000, 50),
            "key_drivers": rng.sample(DRIVERS, rng.randrange(1, 4)),
        }
    assert source == "phone_call"
    return {"call_recording": f"recordings/{subject}/{rng.randrange(10**9)}.mp3", "phone": phone}


def generate(n: int, seed: int = SEED) -> GeneratedWorld:
    """``n`` records of the reference policy's world (see the module's docstring)."""
    enabled = gc.isenabled()
    gc.disable()  # millions of small objects that all live: collecting finds nothing
    try:
        return _generate(n, seed)
    finally:
        if enabled:
            gc.enable()


def _generate(n: int, seed: int) -> GeneratedWorld:
    rng = random.Random(f"{seed}-{n}")
    span = (END - START).total_seconds()
    day = 86_400.0
    raw: list[tuple[float, str, str, dict]] = []  # (ts, subject, source, data)
    events: list[tuple[float, str, str, int | None, str | None]] = []  # record: index into raw
    suppression: list[SuppressionEntry] = []
    subjects: list[str] = []
    start_ts, end_ts = START.timestamp(), END.timestamp()
    counts = [v for v, _ in RECORDS_PER_SUBJECT]
    count_w = [w for _, w in RECORDS_PER_SUBJECT]
    while len(raw) < n:
        subject = f"s{len(subjects):07d}"
        subjects.append(subject)
        first = start_ts + span * rng.random() ** 0.6  # more business in later years
        k = min(rng.choices(counts, count_w)[0], n - len(raw))
        email = f"{subject}@example.com" if rng.random() < 0.9 else f"{subject.upper()}@Example.COM"
        person = (
            f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}",
            email,
            f"020 7946 {len(subjects) % 10000:04d}",
        )
        enquiries: list[tuple[float, int]] = []
        has_email = False
        for i, source in enumerate(_weighted(rng, SOURCES, k)):
            ts = first if i == 0 else min(first + rng.expovariate(1 / (150 * day)), end_ts)
            index = len(raw)
            data = _data(rng, source, subject, person)
            has_email = has_email or "email" in data
            raw.append((ts, subject, source, data))
            if source in ENQUIRY_SOURCES:
                enquiries.append((ts, index))
                if rng.random() < 0.75:
                    resolved = ts + rng.uniform(3600, 90 * day)
                    if resolved <= end_ts:
                        events.append((resolved, subject, "enquiry_resolved", index, None))
            elif source == "website_visit":
                choice = rng.random()
                if choice < 0.5:
                    events.append((ts, subject, "cookies_accepted", None, None))
                elif choice < 0.7:
                    events.append((ts, subject, "cookies_rejected", None, None))
        last = min(end_ts, first + 6 * 365 * day)
        for kind in _weighted(rng, INTERACTIONS, rng.choice((0, 0, 1, 1, 2, 3, 4))):
            events.append((rng.uniform(first, last), subject, kind, None, None))
        if enquiries and rng.random() < 0.08:
            let = min(enquiries)[0] + rng.uniform(7 * day, 180 * day)
            if let <= end_ts:
                events.append((let, subject, "office_let", None, None))
        if has_email and rng.random() < 0.06:
            when = rng.uniform(first, last)
            events.append((when, subject, "unsubscribed", None, None))
            suppression.append(SuppressionEntry(email, _instant(when), "unsubscribed"))
        if has_email and rng.random() < 0.02:
            events.append(
                (rng.uniform(first, last), subject, "objected", None, "marketing_updates")
            )
    order = sorted(range(len(raw)), key=lambda i: raw[i][0])
    new_index = {old: new for new, old in enumerate(order)}
    ids = [f"r{i:07d}" for i in range(len(raw))]
    records = [
        Record(ids[new], raw[old][1], raw[old][2], _instant(raw[old][0]), raw[old][3])
        for new, old in enumerate(order)
    ]
    events.sort(key=lambda e: e[0])
    return GeneratedWorld(
        n,
        records,
        [
            Event(s, kind, _instant(ts), None if rec is None else ids[new_index[rec]], purpose)
            for ts, s, kind, rec, purpose in events
        ],
        sorted(suppression, key=lambda e: e.at),
        subjects,
    )


def _instant(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ts), UTC)


def change_sets(world: GeneratedWorld, chunk: int = LOAD_CHUNK) -> Iterator[ChangeSet]:
    """The world as change sets of ``chunk`` records, each with the events and suppression
    entries up to its last record's instant (the last one takes the rest)."""
    ev = sup = 0
    records = world.records
    for start in range(0, len(records), chunk):
        part = records[start : start + chunk]
        final = start + chunk >= len(records)
        until = part[-1].collected_at
        ev_end, sup_end = ev, sup
        while ev_end < len(world.events) and (final or world.events[ev_end].at <= until):
            ev_end += 1
        while sup_end < len(world.suppression) and (
            final or world.suppression[sup_end].at <= until
        ):
            sup_end += 1
        yield ChangeSet(
            put_records=part,
            add_events=world.events[ev:ev_end],
            add_suppression=world.suppression[sup:sup_end],
        )
        ev, sup = ev_end, sup_end


# --- stores ----------------------------------------------------------------------------------


def memory_store(world: GeneratedWorld) -> MemoryStore:
    store = MemoryStore()
    for changes in change_sets(world):
        store.apply(changes)
    return store


def _key(n: int) -> str:
    return f"v{VERSION}-s{SEED}-n{n}"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def counts(n: int, world: GeneratedWorld | None = None) -> dict[str, int]:
    """How many records, events, suppression entries and subjects ``generate(n)`` makes
    (cached beside the stores: generating a million records to count them takes a while).
    Subjects are ``s0000000`` onwards, each with at least one record."""
    path = CACHE / f"counts-{_key(n)}.json"
    if path.exists():
        found: dict[str, int] = json.loads(path.read_text())
        return found
    world = world or generate(n)
    made = {
        "records": len(world.records),
        "events": len(world.events),
        "suppression": len(world.suppression),
        "subjects": len(world.subjects),
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(made))
    return made


def sqlite_path(n: int, world: GeneratedWorld | None = None) -> Path:
    """The cached SQLite file holding ``generate(n)``, made when missing."""
    path = CACHE / f"sqlite-{_key(n)}.db"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    world = world or generate(n)
    counts(n, world)
    temp = path.with_name(path.name + f".tmp{os.getpid()}")
    started = time.perf_counter()
    _say(f"loading {n:,} records into {path} (cached for later runs) ...")
    store = SqlStore(f"sqlite:///{temp}")
    try:
        for changes in change_sets(world):
            store.apply(changes)
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("ANALYZE")
        verify(store, world)
    finally:
        store.close()
    os.replace(temp, path)
    for suffix in ("-wal", "-shm"):
        Path(f"{temp}{suffix}").unlink(missing_ok=True)
    _say(f"  loaded in {time.perf_counter() - started:.0f} s")
    return path


def csv_folder(n: int, world: GeneratedWorld | None = None) -> Path:
    """The cached CSV store folder holding ``generate(n)``, made when missing."""
    folder = CACHE / f"csv-{_key(n)}"
    if folder.exists():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    world = world or generate(n)
    counts(n, world)
    temp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    started = time.perf_counter()
    _say(f"writing {n:,} records to {folder} (cached for later runs) ...")
    writer_store = CsvStore(temp)
    rows = (
        ("records", writer_store._record_row, world.records),
        ("events", writer_store._event_row, world.events),
        ("suppression", writer_store._entry_row, world.suppression),
    )
    for name, row, values in rows:
        with open(temp / f"{name}.csv", "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")  # as the adapter writes
            writer.writerow(HEADERS[name])
            writer.writerows(row(v) for v in values)  # type: ignore[operator]
    verify(CsvStore(temp), world, samples=5)
    os.replace(temp, folder)
    _say(f"  written in {time.perf_counter() - started:.0f} s")
    return folder


def sql_store(url: str, n: int, prefix: str) -> SqlStore:
    """A SQL store at ``url`` holding ``generate(n)`` under table prefix ``prefix``: reused when
    its counts match, otherwise dropped and loaded through ``apply``."""
    import sqlalchemy as sa

    store = SqlStore(url, prefix=prefix)
    want = counts(n)
    with store.engine.connect() as conn:
        have = tuple(
            conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (store.records, store.events, store.suppression)
        )
    if have == (want["records"], want["events"], want["suppression"]):
        return store
    world = generate(n)
    started = time.perf_counter()
    _say(f"loading {n:,} records into {store.where} (tables {prefix}*, kept for later runs) ...")
    store.drop_tables()
    store.close()
    store = SqlStore(url, prefix=prefix)
    for changes in change_sets(world):
        store.apply(changes)
        if store.backend == "postgresql":
            # Statistics after every change set: without them (a server whose autovacuum is
            # off, as the test server's is) a connection keeps the plans it made while the
            # tables were empty, and each id lookup of the next apply reads the whole table.
            with store.engine.begin() as conn:
                for table in (store.records, store.events, store.categories, store.suppression):
                    conn.execute(sa.text(f"ANALYZE {table.name}"))
    verify(store, world)
    _say(f"  loaded in {time.perf_counter() - started:.0f} s")
    return store


def verify(store: object, world: GeneratedWorld, samples: int = 25) -> None:
    """Sampled records, subjects' timelines and suppression entries read back as generated."""
    rng = random.Random(1)
    chosen = rng.sample(world.records, min(samples, len(world.records)))
    wanted = {r.subject for r in chosen}
    events: dict[str, list[Event]] = {s: [] for s in wanted}
    records: dict[str, list[str]] = {s: [] for s in wanted}
    for event in world.events:
        if event.subject in wanted:
            events[event.subject].append(event)
    for record in world.records:
        if record.subject in wanted:
            records[record.subject].append(record.id)
    for record in chosen:
        got = store.get_record(record.id)  # type: ignore[attr-defined]
        expected = attrs.evolve(record, data=normalise_data(record.data))
        assert got == expected, f"record {record.id}: stored {got!r}, generated {expected!r}"
        got_events = list(store.subject_events(record.subject))  # type: ignore[attr-defined]
        assert got_events == events[record.subject], record.subject
        got_ids = [r.id for r in store.subject_records(record.subject)]  # type: ignore[attr-defined]
        assert got_ids == records[record.subject], record.subject
    for entry in world.suppression[:samples]:
        found = store.suppression_entries([entry.email])  # type: ignore[attr-defined]
        assert entry in found, entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    world = generate(args.n)
    print(f"generated in {time.perf_counter() - started:.1f} s")
    print(world.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
