"""The small subset of YAML the Fides manifest needs, written without a YAML library.

Block mappings and block sequences of strings, booleans, integers and null, with ``#``
comments before the document. Every string is double-quoted, so nothing in it can be read as
another type (``"no"``, ``"1.0"``, ``"null"``) or as syntax; characters YAML would fold or
refuse (line breaks, control characters, U+2028/U+2029, a byte-order mark) are escaped, every
other character written as itself. Mapping keys are written plain when they are simple words.

fairproc's core depends on no YAML library (PyYAML is a C extension with its own release
cycle, for one command's output); the tests read every document written here back with
PyYAML's ``safe_load`` and compare.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# keys YAML 1.1 readers take as booleans or null when plain
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _printable(code: int) -> bool:
    """Characters written as themselves inside a double-quoted scalar (YAML's printable set,
    less the line breaks it folds and the byte-order mark)."""
    return (
        0x20 <= code <= 0x7E
        or (0xA0 <= code <= 0xD7FF and code not in (0x2028, 0x2029))
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or code >= 0x10000
    )


def quote(text: str) -> str:
    return '"' + _escape(text, _ESCAPES) + '"'


def _escape(text: str, escapes: Mapping[str, str]) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in escapes:
            out.append(escapes[char])
        elif _printable(code):
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, got {type(key).__name__} {key!r}")
    if _PLAIN_KEY.fullmatch(key) and key.lower() not in _RESERVED:
        return key
    return quote(key)


def _scalar(value: object) -> str | None:
    """The value written inline, or None for a non-empty mapping or sequence."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Mapping):
        return "{}" if not value else None
    if isinstance(value, Sequence):
        return "[]" if not value else None
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as YAML")


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            inline = _scalar(item)
            if inline is not None:
                lines.append(f"{pad}{_key(key)}: {inline}")
            else:
                lines.append(f"{pad}{_key(key)}:")
                lines.extend(_block(item, indent + 2))
        return lines
    for item in value:
        inline = _scalar(item)
        if inline is not None:
            lines.append(f"{pad}- {inline}")
            continue
        # the item's first line goes on the dash's line, the rest under it
        inner = _block(item, indent + 2)
        lines.append(f"{pad}- {inner[0][indent + 2 :]}")
        lines.extend(inner[1:])
    return lines


def dump(document: Mapping[str, Any], comments: Iterable[str] = ()) -> str:
    """``document`` as YAML text, after ``comments`` (one ``#`` line each)."""
    # a comment ends at a line break and may hold only printable characters: the rest escaped
    head = [f"# {_escape(' '.join(line.split()), {})}".rstrip() for line in comments]
    return "\n".join([*head, *_block(document, 0)]) + "\n"
