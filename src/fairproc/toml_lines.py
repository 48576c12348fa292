"""Where a key of a TOML file is written: the line a located problem names.

tomllib gives values without positions; :class:`LineIndex` finds a key path's line again in
the text (tables, arrays of tables, dotted and quoted keys), for the errors of rule files,
mapping files and scenario files alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=""")


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|[^.\s]+', text)
    return tuple(p.strip("\"'") for p in parts)


class LineIndex:
    """Where each key path of a TOML file stands, found by reading its headers and keys."""

    def __init__(self, text: str):
        self.lines: dict[tuple[str | int, ...], int] = {}
        table: tuple[str | int, ...] = ()
        counts: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                name = _split_key(header.group(2))
                if header.group(1) == "[[":
                    index = counts.get(name, 0)
                    counts[name] = index + 1
                    table = (*name, index)
                else:
                    table = name
                # [a.b] also stands for a, which no header of its own may name
                for end in range(1, len(table) + 1):
                    self.lines.setdefault(table[:end], number)
                continue
            key = _KEY.match(line)
            if key:
                self.lines.setdefault((*table, *_split_key(key.group(1))), number)

    def find(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of the nearest enclosing key or table that has one."""
        return nearest_line(self.lines, path)


def nearest_line(
    lines: Mapping[tuple[str | int, ...], int], path: Sequence[str | int]
) -> int | None:
    """The line of ``path`` in ``lines`` (a :class:`LineIndex`'s), or of the nearest enclosing
    key or table that has one."""
    key = tuple(path)
    while key:
        if key in lines:
            return lines[key]
        # arrays of tables nested in keyed tables: [[purpose.x.bases]] indexes under its name
        key = key[:-1]
    return None
