"""The codec: how every store writes instants and data, and the limits on what it keeps.

Instants are UTC; the SQL store keeps them as integer microseconds since the epoch
(:func:`instant_to_us`), the CSV store as ISO 8601 text (:func:`format_instant`). A record's
data is JSON with tagged dates and times (:func:`encode_data`), so it comes back as it went in.

Pure: imports only :mod:`fairproc.model`; never a driver, an adapter or another storage module.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

from fairproc.model import Record, normalise_email

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_US = dt.timedelta(microseconds=1)

MAX_ID_LENGTH = 255
"""Ids, subjects, sources, kinds, purposes, category names, reasons: at most this many
characters, in every adapter (SQL columns are sized for it)."""
MAX_EMAIL_LENGTH = 320


def instant_to_us(value: dt.datetime) -> int:
    """Microseconds since the epoch: how the SQL adapter stores and compares instants."""
    return (value - EPOCH) // _US


def us_to_instant(value: int) -> dt.datetime:
    return EPOCH + dt.timedelta(0, 0, value)  # (days, seconds, microseconds): positional is faster


def utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(UTC)


def format_instant(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when there are some."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_stored_instant(text: str) -> dt.datetime:
    """The inverse of :func:`format_instant` (any offset accepted); ValueError otherwise."""
    value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"expected an instant with an offset, got {text!r}")
    return value.astimezone(UTC)


_TAGS = ("$date", "$time", "$datetime")


def _encode_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} is not a finite number")
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{path}: naive datetime {value.isoformat()} has no offset")
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: keys must be strings, got {key!r}")
            stored = "$" + key if key.startswith("$") else key
            out[stored] = _encode_value(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_encode_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise ValueError(
        f"{path}: {type(value).__name__} values cannot be stored (expected text, numbers, "
        "true/false, dates, times, aware datetimes, lists and tables)"
    )


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, item),) = value.items()
            if key in _TAGS and isinstance(item, str):
                if key == "$date":
                    return dt.date.fromisoformat(item)
                if key == "$time":
                    return dt.time.fromisoformat(item)
                return dt.datetime.fromisoformat(item)
        return {(k[1:] if k.startswith("$") else k): _decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


def encode_data(data: Mapping[str, Any], what: str = "data") -> str:
    """A record's data (or an audit entry's detail) as JSON text; ValueError when a value
    cannot be stored faithfully (NaN, a naive datetime, an arbitrary object)."""
    text = json.dumps(
        _encode_value(data, what), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: holds text that is not valid Unicode") from None
    return text


def decode_data(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    if "$" not in text and "\\u" not in text:
        # No "$" anywhere, not even escaped: no tagged value and no escaped key, so the JSON
        # is the data as it is (most records: plain text and numbers).
        return value
    decoded: dict[str, Any] = _decode_value(value)
    return decoded


def normalise_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` as a store gives it back."""
    return decode_data(encode_data(data))


def category_norms(record: Record) -> list[tuple[str, str | None]]:
    """(category, normalised text) for each category the record holds: what the SQL adapter
    indexes. The text is :func:`fairproc.model.normalise_email` of a non-blank string value
    (None otherwise, or when longer than an email can be), so a suppression entry can be
    matched without reading the data."""
    out: list[tuple[str, str | None]] = []
    for key, value in record.data.items():
        if value is None:
            continue
        norm = None
        if isinstance(value, str) and value.strip():
            norm = normalise_email(value)
            if len(norm) > MAX_EMAIL_LENGTH:
                norm = None
        out.append((key, norm))
    return out


def row_value(value: Any) -> Any:
    """A value as ``find_rows`` gives it, whatever the store: an instant as integer
    microseconds (:func:`instant_to_us`), a truth as 0 or 1, anything else as it is."""
    if isinstance(value, dt.datetime):
        return instant_to_us(value)
    if isinstance(value, bool):
        return int(value)
    return value
