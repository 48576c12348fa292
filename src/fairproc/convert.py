"""cattrs converters between fairproc's values and plain data: TOML in, JSON out.

Kept apart from the model, as attrs and cattrs themselves do. Structuring is strict: a string
where a list is expected, or a number where a string is expected, is an error rather than a
silent ``str()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from fairproc.clock import Period, require_aware
from fairproc.errors import InputError, Problem, ProblemsError, did_you_mean

ALL = "*"


def _strict(kind: type, label: str) -> Any:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind and not (kind is float and type(value) is int):
            raise ValueError(f"expected {label}, got {type(value).__name__} {value!r}")
        return value

    return structure


def _structure_datetime(value: Any, _: Any) -> dt.datetime:
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expected an offset date-time such as 2026-11-21T10:00:00Z, got {value!r}"
            ) from None
    if not isinstance(value, dt.datetime):
        raise ValueError(
            f"expected an offset date-time such as 2026-11-21T10:00:00Z, "
            f"got {type(value).__name__} {value!r}"
        )
    if value.tzinfo is None:
        raise ValueError(
            f"naive date-time {value.isoformat()} has no offset; write it with one, "
            "such as 2026-11-21T10:00:00Z or 2026-11-21T10:00:00+01:00"
        )
    return value


def _structure_date(value: Any, _: Any) -> dt.date:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ValueError(f"expected a date such as 2020-07-16, got {value!r}")


def _structure_time(value: Any, _: Any) -> dt.time:
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, dt.time) and value.tzinfo is None:
        return value
    raise ValueError(f"expected a local time such as 09:00:00, got {value!r}")


def _structure_period(value: Any, _: Any) -> Period:
    if isinstance(value, Period):
        return value
    return Period.parse(value)


def _structure_ids_or_all(value: Any, _: Any) -> tuple[str, ...] | None:
    if value == ALL:
        return None
    return _structure_ids(value, _)


def _structure_ids(value: Any, _: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of ids, got {type(value).__name__} {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"expected a list of ids (strings), got {item!r} in it")
    return tuple(value)


def _structure_mapping(value: Any, _: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a table, got {type(value).__name__} {value!r}")
    return MappingProxyType(dict(value))


def make_converter() -> cattrs.Converter:
    """The converter for rule files, scenario worlds and JSON output."""
    c = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    c.register_structure_hook(str, _strict(str, "a string"))
    c.register_structure_hook(bool, _strict(bool, "true or false"))
    c.register_structure_hook(int, _strict(int, "a whole number"))
    c.register_structure_hook(float, _strict(float, "a number"))
    c.register_structure_hook(dt.datetime, _structure_datetime)
    c.register_structure_hook(dt.date, _structure_date)
    c.register_structure_hook(dt.time, _structure_time)
    c.register_structure_hook(Period, _structure_period)
    c.register_structure_hook_func(lambda t: t == (tuple[str, ...] | None), _structure_ids_or_all)
    c.register_structure_hook_func(lambda t: t == tuple[str, ...], _structure_ids)
    c.register_structure_hook_func(lambda t: t == Mapping[str, Any], _structure_mapping)

    c.register_unstructure_hook(dt.datetime, _unstructure_instant)
    c.register_unstructure_hook(dt.date, lambda d: d.isoformat())
    c.register_unstructure_hook(dt.time, lambda t: t.isoformat())
    c.register_unstructure_hook(Period, str)
    c.register_unstructure_hook(
        MappingProxyType, lambda m: {k: c.unstructure(v) for k, v in m.items()}
    )
    c.register_unstructure_hook(frozenset, lambda s: sorted(c.unstructure(i) for i in s))
    return c


def _unstructure_instant(value: dt.datetime) -> str:
    value = require_aware(value, "instant")
    text = value.astimezone(dt.UTC).isoformat()
    return text.replace("+00:00", "Z")


converter = make_converter()


def problems_from(
    exc: BaseException, path: tuple[str | int, ...] = (), file: str | None = None
) -> list[Problem]:
    """Turn a cattrs structuring failure into problems, each with its full key path."""
    out: list[Problem] = []

    def walk(e: BaseException, at: tuple[str | int, ...]) -> None:
        if isinstance(e, ClassValidationError | IterableValidationError):
            for sub in e.exceptions:
                walk(sub, at + _note_path(sub))
            return
        if isinstance(e, ForbiddenExtraKeysError):
            expected = sorted(f.name for f in _fields(e.cl)) if e.cl is not None else []
            for key in sorted(e.extra_fields):
                out.append(
                    Problem(
                        f"unknown key {key!r}"
                        + did_you_mean(key, expected)
                        + (f" (expected one of: {', '.join(expected)})" if expected else ""),
                        file=file,
                        path=(*at, key),
                    )
                )
            return
        if isinstance(e, ProblemsError):
            for p in e.problems:
                out.append(Problem(p.message, file=file, path=at + p.path))
            return
        if isinstance(e, KeyError):
            out.append(Problem("required key is missing", file=file, path=at))
            return
        if isinstance(e, ValueError | TypeError):
            out.append(Problem(str(e), file=file, path=at))
            return
        out.append(Problem(f"{type(e).__name__}: {e}", file=file, path=at))

    walk(exc, path)
    return out


def _note_path(e: BaseException) -> tuple[str | int, ...]:
    for note in getattr(e, "__notes__", ()) or ():
        name = getattr(note, "name", None)
        if isinstance(name, str):
            return (_toml_name(name),)
        index = getattr(note, "index", None)
        if isinstance(index, int | str):
            return (index,)
    return ()


def _toml_name(attribute: str) -> str:
    return attribute[:-1] if attribute.endswith("_") else attribute


def _fields(cl: type) -> tuple[Any, ...]:
    import attrs

    return tuple(attrs.fields(cl)) if attrs.has(cl) else ()


def structure(
    data: Any, cl: type, path: tuple[str | int, ...] = (), file: str | None = None
) -> Any:
    """Structure ``data`` as ``cl``, raising :class:`InputError` with every problem found."""
    try:
        return converter.structure(data, cl)
    except Exception as exc:  # cattrs wraps everything a hook raises
        raise InputError(problems_from(exc, path, file)) from None
