"""The contract every store keeps, as a pytest test suite a host application can run on its own
adapter.

.. code-block:: python

    # tests/test_my_store.py
    from fairproc.testing.contract import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self, tmp_path):
            return MyStore(tmp_path / "data")

The suite checks what the engine relies on: reads give back what was written (instants as
instants, data as :func:`fairproc.storage.normalise_data` gives it), in the order written; a
change set applies whole or not at all; ``revision`` moves on every write and only then;
``find_records`` answers as the reference interpreter does over a world built to hit the
edges (month ends, 29 February, both sides of a clock change, equal instants, suppression by
every route); and an :class:`~fairproc.engine.Engine` reading the store decides exactly as it
does reading a :class:`~fairproc.world.World` of the same data.

Optional hooks: ``reopen(store, tmp_path)`` returns a second handle on the same data (persistent
stores); ``break_next_write(store, monkeypatch)`` makes the store's next write fail after it has
started writing, to check that nothing is left half done.

This module imports pytest (and only pytest); import it from test code.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from fairproc.conditions import Condition, interpret, parse
from fairproc.conditions.vocabulary import Ctx, vocabulary
from fairproc.engine import Engine
from fairproc.errors import FairprocError, InputError
from fairproc.loader import load_policy
from fairproc.model import Event, Policy, Record, SuppressionEntry
from fairproc.storage import (
    RECORDS_CONTEXT,
    AuditEntry,
    ChangeSet,
    Store,
    build_history,
    count_records,
    find_rows,
    normalise_data,
    row_value,
)
from fairproc.values import Value
from fairproc.world import SubjectHistory, World, listed_entries, record_addresses

__all__ = [
    "CONDITIONS",
    "TIMES",
    "StoreContract",
    "decisions",
    "expected_matches",
    "expected_rows",
    "reference_world",
]

UTC = dt.UTC
LONDON = ZoneInfo("Europe/London")


def _u(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def _l(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, fold: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=LONDON, fold=fold)


@lru_cache(maxsize=1)
def reference_policy() -> Policy:
    return load_policy("flexioffices")


@attrs.frozen(repr=False)
class ReferenceWorld(Value):
    records: tuple[Record, ...]
    events: tuple[Event, ...]
    suppression: tuple[SuppressionEntry, ...]

    def world(self) -> World:
        return World(self.records, self.events, self.suppression)

    def changes(self) -> ChangeSet:
        return ChangeSet(
            put_records=self.records, add_events=self.events, add_suppression=self.suppression
        )


def reference_world() -> ReferenceWorld:
    """Subjects and timelines for the reference policy that hit the edges storage gets wrong."""
    r = Record
    e = Event
    records = (
        r(
            "ada-qq",
            "ada",
            "quick_quote",
            _u(2026, 11, 21, 10),
            {
                "name": "Ada Lovelace",
                "email": "  Ada@Example.com ",
                "phone": "+44 20 7946 0000",
                "office_size": 10,
                "office_location": "London",
            },
        ),
        r(
            "bob-hb",
            "bob",
            "handbook_download",
            _l(2020, 2, 29, 12),
            {"name": "Bob", "email": "bob@example.com", "phone": "=1+2"},
        ),
        r(
            "cat-wv",
            "cat",
            "website_visit",
            _u(2024, 1, 31, 0, 30),
            {"ip_address": "192.0.2.1", "mac_address": None},
        ),
        r("cat-wv2", "cat", "website_visit", _l(2025, 10, 26, 1, 30), {"ip_address": "192.0.2.2"}),
        r(
            "cat-wv3",
            "cat",
            "website_visit",
            _l(2025, 10, 26, 1, 10, fold=1),
            {"ip_address": "192.0.2.3"},
        ),
        r(
            "dan-cf",
            "dan",
            "contact_form",
            _u(2019, 1, 31, 9),
            {
                "name": "Dan",
                "company_name": "@corp",
                "email": "dan@example.com",
                "enquiry_nature": '-rent, "quoted"\nsecond line',
            },
        ),
        r(
            "eve-mq",
            "eve",
            "multiquote",
            dt.datetime(2022, 12, 31, 23, 59, 59, 999999, UTC),
            {"email": "eve@example.com", "name": "Eve"},
        ),
        r("eve-lc", "eve", "live_chat", _l(2023, 8, 31, 17, 29, 59), {"email": "EVE@example.com "}),
        r("fay-qq", "fay", "quick_quote", _u(2024, 2, 29, 17, 30), {"email": " FAY@example.com"}),
        r(
            "gus-pc",
            "gus",
            "phone_call",
            _u(2021, 6, 30, 8),
            {"call_recording": "rec-1", "phone": "@123"},
        ),
        r(
            "hal-sf",
            "hal",
            "search_follow_up",
            _u(2020, 10, 25, 1, 30),
            {
                "budget": 1500.5,
                "start_date": dt.date(2021, 1, 1),
                "key_drivers": ["light", "transport"],
                "move_reasons": {"why": "growth", "$ref": "x"},
                "business_type": "Ünïcode ✓ 'quoted'\ttab",
            },
        ),
        r("ivy-oc", "ivy", "office_calculator", _u(2025, 3, 31, 23), {}),
        r("jon-wv", "jon", "website_visit", _u(2023, 3, 26, 0, 59, 59), {"ip_address": "::1"}),
        r(
            "jon-hb",
            "jon",
            "handbook_download",
            _u(2021, 1, 31, 12),
            {"email": "jon@example.com", "name": "Jon"},
        ),
    )
    events = (
        e("ada", "enquiry_resolved", _u(2026, 12, 1, 12), record="ada-qq"),
        e("ada", "email_open", _u(2027, 1, 31, 23, 30)),
        e("bob", "email_click", _l(2021, 3, 31, 23, 30)),
        e("bob", "unsubscribed", _u(2022, 6, 30, 23)),
        e("cat", "cookies_accepted", _u(2024, 1, 31, 0, 30)),
        e("cat", "cookies_rejected", _u(2024, 1, 31, 0, 30)),
        e("cat", "cookies_accepted", _u(2025, 3, 30, 1, 30)),
        e("dan", "enquiry_resolved", _u(2019, 2, 28, 12), record="dan-cf"),
        e("dan", "office_let", _l(2019, 3, 31, 0, 30)),
        e("dan", "restricted", _u(2023, 5, 1)),
        e("dan", "restriction_lifted", _u(2023, 6, 1)),
        e("dan", "restricted", _u(2023, 6, 1)),
        e("eve", "objected", _u(2023, 1, 15)),
        e("eve", "objected", _u(2023, 2, 1), purpose="analytics"),
        e("gus", "erased", _u(2024, 1, 1)),
        e("hal", "staff_contact", _u(2020, 11, 1, 9), id="call-7"),
        e("ivy", "objected", _u(2025, 4, 1), purpose="marketing_updates"),
        e("jon", "office_let", _u(2030, 1, 31)),
        e("jon", "email_open", _l(2023, 10, 29, 1, 30, fold=1)),
    )
    suppression = (
        SuppressionEntry("fay@EXAMPLE.com", _u(2024, 3, 1), "imported"),
        SuppressionEntry("nobody@example.com", _u(2020, 1, 1), "unsubscribed"),
    )
    return ReferenceWorld(records, events, suppression)


TIMES: tuple[dt.datetime, ...] = (
    _u(2019, 2, 28, 12),
    _u(2021, 2, 28, 23, 59, 59),
    _u(2024, 1, 31, 0, 30),
    _u(2024, 2, 29, 17, 30),
    _u(2025, 1, 31, 0, 30),
    _l(2025, 10, 26, 1, 30, fold=1),
    _u(2026, 11, 21, 10),
    _u(2029, 3, 31, 0, 30),
    _u(2037, 1, 1),
)
"""Instants the contract asks at: month ends, 29 February, the repeated hour of a clock
change, retention due dates to the second."""

CONDITIONS: tuple[str, ...] = (
    "record.source == 'website_visit' and at >= record.collected_at + P12M",
    "at < subject.last_interaction + P4Y",
    "not (at < subject.last_interaction + P4Y)",
    "at >= subject.last_interaction + P4Y",
    "subject.cookie_choice == 'cookies_accepted'",
    "subject.cookie_choice != 'cookies_accepted'",
    "subject.suppressed",
    "not subject.suppressed",
    "subject.restricted",
    "objected('marketing_updates')",
    "objected('analytics') and not objected('website_content')",
    "'email' in record.categories",
    "'mac_address' in record.categories or 'phone' not in record.categories",
    "record.resolved_at is not None and at >= record.resolved_at + P10Y",
    "record.resolved_at is None",
    "subject.office_let is not None and at >= subject.office_let + P10Y",
    "in_office_hours(record.collected_at)",
    "local_date(record.collected_at) == date('2020-02-29')",
    "record.collected_at + PT48H < at",
    "record.collected_at + P1M >= subject.last_interaction",
    "record.subject in ['ada', 'bob'] or record.id == 'jon-wv'",
    "record.source != 'quick_quote' and record.id > 'c'",
    "record.collected_at - P1Y < at - P2Y",
    "at - P1M > record.collected_at and subject.id != 'cat'",
    "record.collected_at == subject.last_interaction",
    "weekday(record.collected_at) == 4 or subject.office_let + P1Y > at",
)
"""Conditions over records the contract checks ``find_records`` with: every kind of name, exact
SQL, calendar periods, and functions no database computes."""


def reference_history(world: World, policy: Policy, subject: str) -> SubjectHistory:
    """``subject``'s history straight from ``world``, with the suppression entries of the
    addresses it gave: what the reference interpreter reads."""
    records, events = world.subject_records(subject), world.subject_events(subject)
    entries = listed_entries(world, policy, record_addresses(policy, records))
    return build_history(policy, subject, records, events, entries)


def expected_matches(world: World, condition: str, at: dt.datetime, policy: Policy) -> list[str]:
    """Record ids for which ``condition`` holds at ``at``, by the reference interpreter."""
    vocab = vocabulary(policy, RECORDS_CONTEXT)
    node = Condition.build(condition, vocab, policy.tz).node
    out = []
    for record in world.records:
        history = reference_history(world, policy, record.subject)
        if interpret(node, Ctx(at, history, record), vocab, policy.tz):
            out.append(record.id)
    return out


ROW_VALUES: tuple[str, ...] = (
    "record.collected_at",
    "record.resolved_at",
    "subject.last_interaction",
    "subject.office_let",
    "subject.suppressed",
    "record.source",
    "subject.office_let is not None",
    "record.collected_at + P12M",
    "weekday(record.collected_at)",
)
"""Values the contract asks ``find_rows`` for: instants, missing ones, truths, text, and some
no database computes exactly (a calendar shift, a local weekday)."""


def expected_rows(
    world: World, condition: str, at: dt.datetime, policy: Policy, values: Sequence[str]
) -> list[tuple[str, str, str, tuple[Any, ...]]]:
    """``find_rows`` by the reference interpreter: (id, subject, source, values) for each
    record ``condition`` holds for at ``at``, values as :func:`fairproc.storage.row_value`."""
    vocab = vocabulary(policy, RECORDS_CONTEXT)
    nodes = [parse(v) for v in values]
    wanted = set(expected_matches(world, condition, at, policy))
    out = []
    for record in world.records:
        if record.id not in wanted:
            continue
        history = reference_history(world, policy, record.subject)
        ctx = Ctx(at, history, record)
        found = tuple(row_value(interpret(n, ctx, vocab, policy.tz)) for n in nodes)
        out.append((record.id, record.subject, record.source, found))
    return out


def decisions(
    engine: Engine, records: Sequence[Record], subjects: Sequence[str], times: Sequence[dt.datetime]
) -> list[dict[str, Any]]:
    """Every question the engine answers about these records and subjects, as plain data."""
    policy = engine.policy
    out: list[dict[str, Any]] = []
    for at in times:
        for record in records:
            for purpose in policy.purposes:
                out.append(engine.may_process(record.id, purpose, at).to_dict())
            out.append(engine.retention(record.id, at).to_dict())
            out.append(engine.route(record.id, at).to_dict())
            for recipient in ("office_provider", "email_service", "bookkeeper"):
                out.append(engine.may_share(record.id, recipient, at).to_dict())
        for subject in subjects:
            out.append(engine.may_email(subject, at).to_dict())
    return out


def _instant(value: Any) -> Any:
    # Aware datetimes in the repeated hour of a clock change never compare equal to the same
    # instant in another zone (Python's rule), so instants are compared as timestamps.
    if isinstance(value, dt.datetime):
        assert value.utcoffset() is not None, f"naive datetime {value!r} came back"
        return ("instant", value.timestamp())
    return value


def _plain(value: Any) -> Any:
    """A stored value as plain comparable data: instants as timestamps, data normalised."""
    if isinstance(value, Record):
        return (
            "record",
            value.id,
            value.subject,
            value.source,
            _instant(value.collected_at),
            normalise_data(value.data),
        )
    if attrs.has(type(value)):
        return (
            type(value).__name__,
            *(_plain(getattr(value, f.name)) for f in attrs.fields(type(value))),
        )
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return _instant(value)


def _snapshot(store: Store, subjects: Sequence[str]) -> Any:
    return _plain(
        (
            list(store.iter_records()),
            {s: (list(store.subject_records(s)), list(store.subject_events(s))) for s in subjects},
            list(store.suppression_entries(["a@example.com", "b@example.com"])),
            list(store.audit_entries()),
        )
    )


class _Unstorable:
    def __repr__(self) -> str:
        return "<unstorable>"


class StoreContract:
    """Subclass as ``class Test...(StoreContract)`` and define :meth:`make_store`."""

    def make_store(self, tmp_path: Path) -> Store:
        raise NotImplementedError("define make_store(self, tmp_path) to return a new, empty store")

    def reopen(self, store: Store, tmp_path: Path) -> Store | None:
        """A second handle on ``store``'s data, for persistent stores; None: not checked."""
        return None

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        """Make the next ``apply`` fail after it has started writing; False: not checked."""
        return False

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        made = self.make_store(tmp_path)
        try:
            yield made
        finally:
            made.close()

    @pytest.fixture
    def loaded(self, store: Store) -> Store:
        store.apply(reference_world().changes())
        return store

    # -- the shape --

    def test_is_a_store_and_starts_empty(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert store.get_record("r1") is None
        assert list(store.subject_records("ada")) == []
        assert list(store.subject_events("ada")) == []
        assert list(store.suppression_entries(["ada@example.com"])) == []
        assert list(store.iter_records()) == []
        assert list(store.audit_entries()) == []
        at = _u(2026, 1, 1)
        assert list(store.find_records("record.id == 'r1'", at, reference_policy())) == []

    # -- records --

    def test_records_come_back_as_written(self, store: Store) -> None:
        world = reference_world()
        store.apply(ChangeSet(put_records=world.records))
        for record in world.records:
            got = store.get_record(record.id)
            assert got is not None, record.id
            assert _plain(got) == _plain(record), record.id
        assert [r.id for r in store.iter_records()] == [r.id for r in world.records]
        assert [r.id for r in store.subject_records("cat")] == ["cat-wv", "cat-wv2", "cat-wv3"]

    def test_data_round_trips_exactly(self, store: Store) -> None:
        data: Mapping[str, Any] = {
            "formula": '=HYPERLINK("http://x")',
            "plus": "+1",
            "minus": "-1",
            "at": "@SUM(A1)",
            "quote": "'already quoted",
            "tab": "\tx",
            "cr": "\rx",
            "blank": "",
            "spaces": "  ",
            "newlines": "a\nb\r\nc",
            "comma": "a,b",
            "unicode": "Zoë ✓ 𝄞",
            "int": -7,
            "big": 2**70,
            "float": 0.1,
            "bool": True,
            "none": None,
            "list": [1, "two", None, [3]],
            "table": {"$date": "not a date", "nested": {"k": "v"}},
            "date": dt.date(2024, 2, 29),
            "time": dt.time(17, 30),
            "when": dt.datetime(2025, 10, 26, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        }
        record = Record("r-data", "-subject", "=source", _u(2024, 2, 29, 0, 0, 0), data)
        store.apply(ChangeSet(put_records=[record]))
        got = store.get_record("r-data")
        assert got is not None
        assert dict(got.data) == normalise_data(data)
        assert (got.subject, got.source) == ("-subject", "=source")

    def test_put_replaces_in_place_and_can_move_subject(self, store: Store) -> None:
        t = _u(2024, 1, 1)
        a, b, c = (Record(i, "ada", "quick_quote", t, {"n": i}) for i in ("a", "b", "c"))
        store.apply(ChangeSet(put_records=[a, b, c]))
        store.apply(ChangeSet(put_records=[attrs.evolve(b, data={"n": "B"})]))
        assert [(r.id, r.data["n"]) for r in store.subject_records("ada")] == [
            ("a", "a"),
            ("b", "B"),
            ("c", "c"),
        ]
        store.apply(ChangeSet(put_records=[attrs.evolve(a, subject="bob")]))
        assert [r.id for r in store.subject_records("ada")] == ["b", "c"]
        assert [r.id for r in store.subject_records("bob")] == ["a"]
        assert [r.id for r in store.iter_records()] == ["a", "b", "c"]

    def test_delete_then_put_moves_to_the_end(self, store: Store) -> None:
        t = _u(2024, 1, 1)
        a, b = (Record(i, "ada", "quick_quote", t, {}) for i in ("a", "b"))
        store.apply(ChangeSet(put_records=[a, b]))
        store.apply(ChangeSet(delete_records=["nope"]))  # unknown ids are no error
        store.apply(ChangeSet(delete_records=["a"], put_records=[a]))
        assert [r.id for r in store.iter_records()] == ["b", "a"]
        store.apply(ChangeSet(delete_records=["a", "b"]))
        assert list(store.iter_records()) == []
        assert store.get_record("a") is None
        assert list(store.subject_records("ada")) == []

    # -- events, suppression, audit --

    def test_events_keep_their_order_and_values(self, store: Store) -> None:
        world = reference_world()
        store.apply(ChangeSet(add_events=world.events))
        for subject in {e.subject for e in world.events}:
            want = [e for e in world.events if e.subject == subject]
            got = list(store.subject_events(subject))
            assert _plain(got) == _plain(want), subject
        more = Event("cat", "cookies_rejected", _u(2024, 1, 31, 0, 30), id="later")
        store.apply(ChangeSet(add_events=[more]))
        assert _plain(list(store.subject_events("cat"))[-1]) == _plain(more)

    def test_events_of_subjects_and_records_can_be_forgotten(self, store: Store) -> None:
        world = reference_world()
        store.apply(ChangeSet(put_records=world.records, add_events=world.events))
        subjects = sorted({e.subject for e in world.events})
        gone_subject = subjects[0]
        named = [e.record for e in world.events if e.record and e.subject != gone_subject]
        marker = Event(gone_subject, "erased", _u(2030, 1, 1))
        store.apply(
            ChangeSet(
                delete_subject_events=[gone_subject],
                delete_record_events=named[:1],
                add_events=[marker],  # added after the deletions: it stays
            )
        )
        assert _plain(list(store.subject_events(gone_subject))) == _plain([marker])
        for subject in subjects[1:]:
            want = [
                e
                for e in world.events
                if e.subject == subject and (e.record is None or e.record not in named[:1])
            ]
            assert _plain(list(store.subject_events(subject))) == _plain(want), subject
        # records are not touched by forgetting events
        assert len(list(store.iter_records())) == len(world.records)

    def test_suppression_entries_answer_like_a_world(self, store: Store) -> None:
        entries = (
            SuppressionEntry(" A@Example.com", _u(2024, 1, 1), "unsubscribed"),
            SuppressionEntry("b@example.com", _u(2023, 1, 1), "objected"),
            SuppressionEntry("a@example.com ", _u(2022, 1, 1), "erased"),
        )
        store.apply(ChangeSet(add_suppression=entries))
        world = World(suppression=entries)
        for emails in (["a@example.com"], ["B@EXAMPLE.COM", "a@example.com"], ["c@x"], []):
            assert _plain(list(store.suppression_entries(emails))) == _plain(
                list(world.suppression_entries(emails))
            ), emails

    def test_audit_log_is_appended_in_order(self, store: Store) -> None:
        first = AuditEntry(
            _u(2024, 1, 1), "erasure", "ada", "dpo", detail={"records": ["r1"], "n": 1}
        )
        second = AuditEntry(_u(2023, 1, 1), "=export", None, None, detail={})
        third = AuditEntry(
            _u(2025, 1, 1),
            "delete",
            "ada",
            record="r9",
            rule="retention.cookies",
            due=_u(2024, 12, 31),
            field="=name",
        )
        store.apply(ChangeSet(audit=[first, second]))
        store.apply(ChangeSet(audit=[third]))
        got = list(store.audit_entries())
        assert _plain(got) == _plain([first, second, third])
        assert got[0].detail == {"records": ["r1"], "n": 1}
        assert _plain(list(store.audit_entries("ada"))) == _plain([first, third])

    # -- revision and atomicity --

    def test_revision_moves_on_every_write_and_only_then(self, store: Store) -> None:
        seen = [store.revision]
        assert store.revision == seen[0]
        t = _u(2024, 1, 1)
        writes = [
            ChangeSet(put_records=[Record("a", "ada", "quick_quote", t, {})]),
            ChangeSet(add_events=[Event("ada", "email_open", t)]),
            ChangeSet(add_suppression=[SuppressionEntry("a@example.com", t, "unsubscribed")]),
            ChangeSet(audit=[AuditEntry(t, "access", "ada")]),
            ChangeSet(delete_records=["a"]),
        ]
        for changes in writes:
            store.apply(changes)
            now = store.revision
            assert now not in seen
            assert store.revision == now
            seen.append(now)

    def test_invalid_changes_are_refused_whole(self, store: Store) -> None:
        t = _u(2024, 1, 1)
        ok = Record("ok", "ada", "quick_quote", t, {})
        store.apply(ChangeSet(put_records=[ok]))
        before = _snapshot(store, ["ada", "bob"])
        revision = store.revision
        naive = dt.datetime(2024, 1, 1)
        bad: list[ChangeSet] = [
            ChangeSet(put_records=[ok, Record("x", "bob", "quick_quote", naive, {})]),
            ChangeSet(put_records=[ok, Record("x", "bob", "quick_quote", t, {"v": _Unstorable()})]),
            ChangeSet(put_records=[ok, Record("x", "bob", "quick_quote", t, {"v": float("nan")})]),
            ChangeSet(put_records=[Record("x", "bob", "q", t, {}), Record("x", "bob", "q", t, {})]),
            ChangeSet(put_records=[Record("", "bob", "quick_quote", t, {})]),
            ChangeSet(
                add_events=[Event("bob", "email_open", t), Event("bob", "email_open", naive)]
            ),
            ChangeSet(add_events=[Event("bob", "email_open", t, record="")]),
            ChangeSet(add_suppression=[SuppressionEntry("   ", t, "unsubscribed")]),
            ChangeSet(
                put_records=[Record("y", "bob", "quick_quote", t, {})],
                audit=[AuditEntry(t, "access", detail={"v": _Unstorable()})],
            ),
            ChangeSet(delete_records=["ok"], add_events=[Event("x" * 300, "email_open", t)]),
        ]
        for changes in bad:
            with pytest.raises(InputError):
                store.apply(changes)
            assert _snapshot(store, ["ada", "bob"]) == before, changes
        assert store.revision == revision

    def test_a_failure_part_way_leaves_nothing_half_done(
        self, store: Store, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        world = reference_world()
        store.apply(ChangeSet(put_records=world.records[:3], add_events=world.events[:3]))
        subjects = sorted({r.subject for r in world.records})
        before = _snapshot(store, subjects)
        if not self.break_next_write(store, monkeypatch):
            pytest.skip("this store gives no way to break a write part way (break_next_write)")
        changes = ChangeSet(
            put_records=[
                attrs.evolve(world.records[0], data={"changed": True}),
                *world.records[3:],
            ],
            delete_records=[world.records[1].id],
            delete_subject_events=[world.events[0].subject],
            add_events=world.events[3:],
            add_suppression=world.suppression,
            audit=[AuditEntry(_u(2024, 1, 1), "import")],
        )
        with pytest.raises(Exception):  # noqa: B017 - whatever the store raises
            store.apply(changes)
        monkeypatch.undo()
        assert _snapshot(store, subjects) == before
        store.apply(changes)  # and the store still works
        assert _plain(store.get_record(world.records[0].id)) == _plain(
            attrs.evolve(world.records[0], data={"changed": True})
        )

    def test_reopened_store_holds_the_same(self, loaded: Store, tmp_path: Path) -> None:
        other = self.reopen(loaded, tmp_path)
        if other is None:
            pytest.skip("not a persistent store (reopen)")
        try:
            subjects = sorted({r.subject for r in reference_world().records})
            assert _snapshot(other, subjects) == _snapshot(loaded, subjects)
            other.apply(ChangeSet(audit=[AuditEntry(_u(2024, 1, 1), "from the other handle")]))
            assert [a.action for a in loaded.audit_entries()] == ["from the other handle"]
        finally:
            other.close()

    # -- queries --

    def test_iter_records_streams(self, store: Store) -> None:
        t = _u(2024, 1, 1)
        store.apply(
            ChangeSet(
                put_records=[
                    Record(f"r{i:04}", f"s{i % 7}", "quick_quote", t, {}) for i in range(1200)
                ]
            )
        )
        stream = store.iter_records()
        assert [r.id for r in itertools.islice(stream, 3)] == ["r0000", "r0001", "r0002"]
        assert len(list(stream)) == 1197

    @pytest.mark.parametrize("condition", CONDITIONS)
    def test_find_records_answers_as_the_interpreter(self, loaded: Store, condition: str) -> None:
        policy = reference_policy()
        world = reference_world().world()
        for at in TIMES:
            got = [r.id for r in loaded.find_records(condition, at, policy)]
            assert got == expected_matches(world, condition, at, policy), (condition, at)

    def test_find_records_takes_text_nodes_and_conditions(self, loaded: Store) -> None:
        policy = reference_policy()
        at = _u(2025, 1, 31, 0, 30)
        text = "at >= record.collected_at + P12M"
        want = [r.id for r in loaded.find_records(text, at, policy)]
        assert want
        vocab = vocabulary(policy, RECORDS_CONTEXT)
        assert [r.id for r in loaded.find_records(parse(text), at, policy)] == want
        cond = Condition.build(text, vocab, policy.tz)
        assert [r.id for r in loaded.find_records(cond, at, policy)] == want

    def test_find_records_refuses_what_a_record_query_cannot_read(self, loaded: Store) -> None:
        policy = reference_policy()
        with pytest.raises(FairprocError, match="purpose"):
            list(loaded.find_records("purpose == 'analytics'", _u(2024, 1, 1), policy))
        with pytest.raises(InputError):
            list(loaded.find_records("record.id == 'x'", dt.datetime(2024, 1, 1), policy))

    @pytest.mark.parametrize("condition", CONDITIONS)
    def test_find_rows_and_count_records_answer_as_the_interpreter(
        self, loaded: Store, condition: str
    ) -> None:
        # The store's own where it pushes conditions down (RowQueries), else the fallback over
        # its find_records: sweeps and whole-store questions ask them either way.
        policy = reference_policy()
        world = reference_world().world()
        for at in TIMES:
            want = expected_rows(world, condition, at, policy, ROW_VALUES)
            got = list(find_rows(loaded, condition, at, policy, ROW_VALUES))
            assert got == want, (condition, at)
            ids = [row[0] for row in find_rows(loaded, condition, at, policy)]
            assert ids == [r[0] for r in want]
            assert count_records(loaded, condition, at, policy) == len(want), (condition, at)

    def test_a_sweep_plans_what_retention_says(self, loaded: Store) -> None:
        from fairproc.sweep import plan_sweep

        policy = reference_policy()
        ref = reference_world()
        engine = Engine(policy, loaded)
        on_world = Engine(policy, ref.world())
        for at in TIMES:
            plan = plan_sweep(engine, at)
            outcomes = {r.id: on_world.retention_result(r, at) for r in ref.records}
            due = {i: d for i, d in outcomes.items() if d.action == "delete"}
            assert sorted(i.record for i in plan.items) == sorted(due), at
            for item in plan.items:
                result = due[item.record]
                assert result.governing is not None
                assert (item.due, item.rule) == (result.until, result.governing.id), at
            assert plan.scanned == len(ref.records), at
            assert plan.review == sum(d.action == "review" for d in outcomes.values()), at

    # -- what the engine decides --

    def test_engine_decides_as_on_a_world(self, loaded: Store) -> None:
        policy = reference_policy()
        ref = reference_world()
        subjects = sorted({r.subject for r in ref.records})
        times = TIMES[::2]
        want = decisions(Engine(policy, ref.world()), ref.records, subjects, times)
        got = decisions(Engine(policy, loaded), ref.records, subjects, times)
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g == w

    def test_engine_sees_each_write(self, store: Store) -> None:
        policy = reference_policy()
        t = _u(2026, 3, 2, 10)
        store.apply(
            ChangeSet(
                put_records=[Record("r1", "ada", "quick_quote", t, {"email": "ada@example.com"})]
            )
        )
        engine = Engine(policy, store)
        at = _u(2026, 3, 10)
        assert engine.may_email("ada", at).outcome == "allowed"
        store.apply(ChangeSet(add_events=[Event("ada", "unsubscribed", _u(2026, 3, 5))]))
        assert engine.may_email("ada", at).outcome == "denied"
        store.apply(ChangeSet(put_records=[Record("r1", "ada", "quick_quote", t, {"name": "Ada"})]))
        assert "no_email" in engine.may_email("ada", at).reasons
