"""Small builders the test files share: aware instants, records, events, engines and policy
folders written to disk.

    from helpers import WorldBuilder, london

    world = WorldBuilder()
    quote = world.record("quick_quote", london(2026, 3, 2, 10))
    world.event("unsubscribed", london(2026, 3, 3))
    decision = world.engine().may_process(quote, "marketing_updates", london(2026, 3, 4))
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fairproc import (
    Decision,
    Engine,
    Event,
    Policy,
    Record,
    SuppressionEntry,
    World,
    load_policy,
)

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
TESTS = Path(__file__).parent
ACME = TESTS / "policies" / "acme"


# --- instants (always aware) -----------------------------------------------------------------


def london(
    year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0
) -> dt.datetime:
    """A wall-clock time in London (GMT or BST as the tz database says)."""
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=LONDON)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)


# --- record data -----------------------------------------------------------------------------

SAMPLE_VALUES: Mapping[str, Any] = {
    "name": "Ada Lovelace",
    "company_name": "Analytical Engines Ltd",
    "email": "Ada@Example.com",
    "phone": "020 7946 0000",
    "enquiry_nature": "Desk space for six",
    "office_size": 6,
    "office_location": "Shoreditch",
    "current_office_address": "1 Old Street, London",
    "business_type": "Engineering",
    "move_reasons": "Growing team",
    "start_date": "2026-06-01",
    "budget": 4000,
    "key_drivers": "Near a station",
    "call_recording": "recordings/0001.ogg",
    "ip_address": "203.0.113.7",
    "mac_address": "00:1B:44:11:3A:B7",
}


def data_for(policy: Policy, source: str, **overrides: Any) -> dict[str, Any]:
    """A value for every category ``source`` collects; ``overrides`` replace or add (None
    removes a category)."""
    data = {c: SAMPLE_VALUES.get(c, f"<{c}>") for c in policy.sources[source].categories}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- worlds ----------------------------------------------------------------------------------


class WorldBuilder:
    """Collects records, events and suppression entries, then builds a World and an Engine.

    ``subject`` is the default subject of everything added; each call may name another.
    """

    def __init__(self, policy: Policy | str | Path = "flexioffices", subject: str = "ada"):
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.subject = subject
        self.records: list[Record] = []
        self.events: list[Event] = []
        self.suppression: list[SuppressionEntry] = []

    def record(
        self,
        source: str,
        at: dt.datetime,
        *,
        id: str | None = None,
        subject: str | None = None,
        data: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> Record:
        subject = subject or self.subject
        if id is None:
            id = f"{subject}.{source}.{len(self.records)}"
        values = dict(data) if data is not None else data_for(self.policy, source, **overrides)
        rec = Record(id, subject, source, at, values)
        self.records.append(rec)
        return rec

    def event(
        self,
        kind: str,
        at: dt.datetime,
        *,
        subject: str | None = None,
        record: Record | str | None = None,
        purpose: str | None = None,
    ) -> Event:
        record_id = record.id if isinstance(record, Record) else record
        ev = Event(subject or self.subject, kind, at, record=record_id, purpose=purpose)
        self.events.append(ev)
        return ev

    def suppress(self, email: str, at: dt.datetime, reason: str = "unsubscribed") -> None:
        self.suppression.append(SuppressionEntry(email, at, reason))

    def world(self) -> World:
        return World(self.records, self.events, self.suppression)

    def engine(self) -> Engine:
        return Engine(self.policy, self.world())


# --- reading decisions -----------------------------------------------------------------------


def failed_rules(decision: Decision) -> set[str]:
    return {c.rule for c in decision.failed}


def governing_rule(decision: Decision) -> str | None:
    """The retention rule a retention decision says governs."""
    for check in decision.checks:
        if check.detail and check.detail.startswith("governs: "):
            return check.rule
    return None


# --- policy folders --------------------------------------------------------------------------

MINIMAL_POLICY = """
[policy]
id = "tiny"
title = "A tiny test policy"
timezone = "Europe/London"

[controller]
name = "Tiny Ltd"
clause = "We are Tiny Ltd."
"""


def write_policy(folder: Path, files: Mapping[str, str], *, minimal: bool = True) -> Path:
    """Write rule files (name -> TOML text, dedented) into ``folder``; with ``minimal``, also a
    policy.toml holding [policy] and [controller] unless ``files`` gives one."""
    folder.mkdir(parents=True, exist_ok=True)
    if minimal and "policy.toml" not in files:
        (folder / "policy.toml").write_text(MINIMAL_POLICY.lstrip(), encoding="utf-8")
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder
