"""Time for the policy engine: aware instants, ISO 8601 calendar periods, local wall clock.

The engine never reads the system clock: every instant is an argument. Naive datetimes are
refused, because guessing their zone would silently move retention dates and routing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from fairproc.errors import InputError
from fairproc.values import Value

if TYPE_CHECKING:
    from dateutil.relativedelta import relativedelta

UTC = dt.UTC

_PERIOD = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def is_period_text(text: str) -> bool:
    return bool(_PERIOD.match(text))


def to_local(instant: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """``instant`` on ``tz``'s wall clock. An instant already written in ``tz`` goes through
    UTC: ``astimezone`` hands it back as written, and a wall time the clocks skipped (01:30
    on the night they go forward) would stay a time no clock showed."""
    if instant.tzinfo is tz:
        return instant.astimezone(UTC).astimezone(tz)
    return instant.astimezone(tz)


# cache_hash: periods key the memo of shifted instants, hashed on every decision
@attrs.frozen(order=False, cache_hash=True, repr=False)
class Period(Value):
    """An ISO 8601 duration (``P10Y``, ``P12M``, ``PT48H``).

    Years, months, weeks and days are calendar units, added on the policy's local wall clock
    (29 Feb + P1Y = 28 Feb; 31 Jan + P1M = 28/29 Feb). Hours, minutes and seconds are elapsed
    time, so PT48H is 48 real hours even across a daylight-saving change.
    """

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(
                f"expected an ISO 8601 period such as P10Y, P12M, P1M or PT48H, got {text!r}"
            )
        return cls(**{k: int(v) for k, v in match.groupdict().items() if v is not None})

    def __str__(self) -> str:
        date = "".join(
            f"{n}{u}"
            for n, u in ((self.years, "Y"), (self.months, "M"), (self.weeks, "W"), (self.days, "D"))
            if n
        )
        time = "".join(
            f"{n}{u}" for n, u in ((self.hours, "H"), (self.minutes, "M"), (self.seconds, "S")) if n
        )
        return "P" + date + (f"T{time}" if time else "") if (date or time) else "P0D"

    def add_to(self, instant: dt.datetime, tz: dt.tzinfo, sign: int = 1) -> dt.datetime:
        """``instant`` moved by this period (backwards when ``sign`` is -1).

        Years, months, weeks and days with dateutil's relativedelta on the local wall clock
        (29 Feb + P1Y = 28 Feb), then elapsed hours, minutes and seconds. A date past the
        years 1 to 9999 is an :class:`InputError` naming the period and the instant.
        """
        # A host asking at a new instant every call still shifts the same few anchors (a
        # record's collection, the last interaction): remembered by instant, not by the
        # datetime (two wall times of the repeated hour compare equal in one zone).
        key = (self, instant.timestamp(), tz, sign)
        found = _SHIFTED.get(key)
        if found is None:
            found = self._shift(instant, tz, sign)
            if len(_SHIFTED) >= SHIFTED_SIZE:
                _SHIFTED.clear()
            _SHIFTED[key] = found
        return found

    def _shift(self, instant: dt.datetime, tz: dt.tzinfo, sign: int) -> dt.datetime:
        try:
            return self._add_to(instant, tz, sign)
        except (OverflowError, ValueError):
            raise InputError.one(
                f"{self} {'after' if sign > 0 else 'before'} {instant.isoformat()} falls outside "
                "the dates that can be held (years 1 to 9999)"
            ) from None

    def _add_to(self, instant: dt.datetime, tz: dt.tzinfo, sign: int) -> dt.datetime:
        result = to_local(instant, tz)
        step = _calendar_step(self, sign)
        if step is not None:
            # Sweeps shift every record's date: the calendar step is looked up per local date
            # (how many days it moves that date) and taken on the wall clock, where the day it
            # lands on has one UTC offset throughout. Only a landing in a day the clocks change
            # goes the exact way.
            ordinal = result.toordinal()
            days = _calendar_days(step, ordinal)
            if day_offset_us(tz, ordinal + days) is not None:
                result = result + dt.timedelta(days=days)
            else:
                wall = result.replace(tzinfo=None) + step[0]
                # A wall time in a spring-forward gap resolves through UTC to a real instant.
                result = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
        if self.hours or self.minutes or self.seconds:
            elapsed = dt.timedelta(hours=self.hours, minutes=self.minutes, seconds=self.seconds)
            result = (result.astimezone(UTC) + sign * elapsed).astimezone(tz)
        return result

    def day_gap_us(self, tz: dt.tzinfo, ordinal: int, sign: int = 1) -> int | None:
        """How many microseconds :meth:`add_to` moves every instant of the local date
        ``ordinal`` (a proleptic Gregorian ordinal), when that is one number for the whole day:
        the date and the date it lands on each have one UTC offset all day. None otherwise.
        A sweep shifts a date per record; this lets it shift integers instead."""
        step = _calendar_step(self, sign)
        days = 0 if step is None else _calendar_days(step, ordinal)
        here, there = day_offset_us(tz, ordinal), day_offset_us(tz, ordinal + days)
        if here is None or there is None:
            return None
        elapsed = sign * (self.hours * 3600 + self.minutes * 60 + self.seconds) * 10**6
        return days * 86_400 * 10**6 + here - there + elapsed


SHIFTED_SIZE = 4096
"""Shifted instants :meth:`Period.add_to` remembers, at the most (a full table starts afresh)."""
_SHIFTED: dict[tuple[Period, float, dt.tzinfo, int], dt.datetime] = {}

_CalendarStep = tuple["relativedelta", dict[int, int]]  # the step, and days it moves each date


@lru_cache(maxsize=256)
def _calendar_step(period: Period, sign: int) -> _CalendarStep | None:
    """The calendar part of ``period`` as a relativedelta, built once per period, with the
    table of how many days it moves each date (filled as dates are met)."""
    if not (period.years or period.months or period.weeks or period.days):
        return None
    # dateutil is imported by the first calendar step, once per period: not at import time
    from dateutil.relativedelta import relativedelta

    delta = relativedelta(
        years=period.years, months=period.months, days=period.weeks * 7 + period.days
    )
    return (delta if sign > 0 else -delta), {}


_DAY_OFFSETS: dict[dt.tzinfo, dict[int, int | None]] = {}
_UNKNOWN = object()


def _calendar_days(step: _CalendarStep, ordinal: int) -> int:
    """How many days the step moves the date ``ordinal`` (29 Feb + P1Y: 365)."""
    delta, table = step
    days = table.get(ordinal)
    if days is None:
        date = dt.date.fromordinal(ordinal)
        days = table[ordinal] = (date + delta).toordinal() - ordinal
    return days


def _per_zone(
    tables: dict[dt.tzinfo, dict[int, int | None]],
    tz: dt.tzinfo,
    day: int,
    offset: Callable[[dt.tzinfo, int], int | None],
) -> int | None:
    """``offset(tz, day)``, worked out once per zone and day and remembered in ``tables``."""
    table = tables.setdefault(tz, {})
    found = table.get(day, _UNKNOWN)
    if found is _UNKNOWN:
        found = table[day] = offset(tz, day)
    return found  # type: ignore[return-value]


def day_offset_us(tz: dt.tzinfo, ordinal: int) -> int | None:
    """The zone's UTC offset in microseconds all through the local date ``ordinal``, or None
    when the clocks change that day (a wall time on it may be skipped or repeated)."""
    return _per_zone(_DAY_OFFSETS, tz, ordinal, _day_offset)


def _day_offset(tz: dt.tzinfo, ordinal: int) -> int | None:
    # Sampled at the day's start, middle and end, both folds: no zone changes its offset
    # twice in one day and back again.
    try:
        date = dt.date.fromordinal(ordinal)
    except (ValueError, OverflowError):
        return None
    offsets = {
        dt.datetime.combine(date, dt.time(hour, minute, second, micro, fold=fold), tz).utcoffset()
        for hour, minute, second, micro in ((0, 0, 0, 0), (12, 0, 0, 0), (23, 59, 59, 999_999))
        for fold in (0, 1)
    }
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    return None if offset is None else offset // dt.timedelta(microseconds=1)


DAY_US = 86_400 * 10**6
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = _EPOCH.date().toordinal()
_US = dt.timedelta(microseconds=1)
_UTC_DAY_OFFSETS: dict[dt.tzinfo, dict[int, int | None]] = {}


class IntegerShift:
    """:meth:`Period.add_to` on integer microseconds since the epoch: exactly the instant it
    gives, fast enough to shift every record of a sweep, or every sample of a solver.

    Within one local calendar day whose UTC offset does not change, and whose shifted day's
    does not either, ``shift(x) - x`` is the same for every ``x`` (:meth:`Period.day_gap_us`):
    it is looked up per local day. An instant on a day the clocks change, in either place,
    is shifted through :meth:`Period.add_to`. Get one with :func:`integer_shift`, which
    shares them, and what they have learnt about the calendar, between callers."""

    def __init__(self, period: Period, tz: dt.tzinfo, sign: int = 1):
        self.period, self.tz, self.sign = period, tz, sign
        self._gaps: dict[int, int | None] = {}  # local day: shift(x) - x, or None
        self._offsets = _UTC_DAY_OFFSETS.setdefault(tz, {})  # utc_day_offset_us's table

    def __call__(self, instant: int) -> int:
        gap = self._gap(instant)
        return self._exact(instant) if gap is None else instant + gap

    def many(self, instants: Iterable[int | None]) -> list[int | None]:
        """``self(x)`` of each instant, None for None: a sweep shifts its rows a batch at a
        time, without a call per row."""
        gap_of, exact = self._gap, self._exact
        shifted: list[int | None] = []
        add = shifted.append
        for x in instants:
            if x is None:
                add(None)
                continue
            gap = gap_of(x)
            add(exact(x) if gap is None else x + gap)
        return shifted

    def stretch(self, instant: int) -> tuple[int, int]:
        """``(shift(instant), end)``: every instant from ``instant`` up to ``end`` (excluded)
        is shifted by the same gap. ``end`` is the start of the next local day when that is
        known, ``instant + 1`` when it is not (a day the clocks change, in either place)."""
        gap = self._gap(instant)
        if gap is None:
            return self._exact(instant), instant + 1
        offset = self._offsets[instant // DAY_US]  # looked up by _gap, and not None there
        assert offset is not None
        return instant + gap, ((instant + offset) // DAY_US + 1) * DAY_US - offset

    def _gap(self, instant: int) -> int | None:
        """``shift(x) - x`` for every ``x`` of ``instant``'s local day, when the day and the
        day it lands on each have one offset all through (day_gap_us says so); else None."""
        day = instant // DAY_US
        offset = self._offsets.get(day, -1)
        if offset == -1:
            offset = utc_day_offset_us(self.tz, day)
        if offset is None:
            return None
        local = (instant + offset) // DAY_US
        gap = self._gaps.get(local, -1)
        if gap == -1:
            gap = self._gaps[local] = self.period.day_gap_us(self.tz, _EPOCH_DAY + local, self.sign)
        return gap

    def _exact(self, instant: int) -> int:
        moved = self.period.add_to(_EPOCH + dt.timedelta(microseconds=instant), self.tz, self.sign)
        return (moved - _EPOCH) // _US


@lru_cache(maxsize=256)
def integer_shift(period: Period, tz: dt.tzinfo, sign: int = 1) -> IntegerShift:
    """The shared :class:`IntegerShift` of ``period`` (backwards when ``sign`` is -1) on
    ``tz``'s calendar."""
    return IntegerShift(period, tz, sign)


def utc_day_offset_us(tz: dt.tzinfo, day: int) -> int | None:
    """The zone's UTC offset in microseconds all through the UTC day ``day`` (days since
    1970-01-01), or None when it changes that day."""
    return _per_zone(_UTC_DAY_OFFSETS, tz, day, _utc_day_offset)


def _utc_day_offset(tz: dt.tzinfo, day: int) -> int | None:
    try:
        first = (_EPOCH + dt.timedelta(days=day)).astimezone(tz).utcoffset()
        last = (_EPOCH + dt.timedelta(days=day + 1) - _US).astimezone(tz).utcoffset()
    except (ValueError, OverflowError):
        return None
    if first is None or first != last:
        return None
    return first // _US


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (remembered: ``Policy.tz`` asks for it on every retention
    weighed, and ``ZoneInfo(name)`` is dear to call even when it has the zone cached)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"expected an IANA time zone such as Europe/London, got {name!r}") from exc


def require_aware(value: Any, what: str = "at") -> dt.datetime:
    """Return ``value`` if it is a timezone-aware datetime; otherwise raise a clear InputError."""
    if not isinstance(value, dt.datetime):
        raise InputError.one(
            f"{what}: expected a timezone-aware datetime, got {type(value).__name__} {value!r}"
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InputError.one(
            f"{what}: naive datetime {value.isoformat()} has no time zone; fairproc does not "
            "guess one. Give an offset (2026-11-21T10:00:00Z, +01:00) or a tzinfo."
        )
    return value


def parse_instant(value: Any, what: str = "at") -> dt.datetime:
    """An aware datetime from a datetime or an ISO 8601 string with an offset."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InputError.one(
                f"{what}: expected an ISO 8601 date-time with an offset such as "
                f"2026-11-21T10:00:00Z, got {value!r}"
            ) from None
    return require_aware(value, what)


@attrs.frozen(repr=False)
class OfficeHours(Value):
    """When the controller's staff are at work, on the policy's local clock."""

    days: frozenset[int]  # 0 = Monday
    opens: dt.time
    closes: dt.time
    closed_dates: frozenset[dt.date] = frozenset()

    def contains(self, instant: dt.datetime, tz: dt.tzinfo) -> bool:
        local = to_local(instant, tz)
        if local.weekday() not in self.days or local.date() in self.closed_dates:
            return False
        wall = local.time().replace(tzinfo=None)
        return self.opens <= wall < self.closes


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
