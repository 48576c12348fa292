"""Errors fairproc raises: each names where the problem is and what was expected."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

import attrs

MIN_PREFIX = 3  # a shorter word is the start of too many names to mean one of them


def closest(word: str, known: Iterable[str]) -> str | None:
    """The name in ``known`` that ``word`` most likely meant, or None when none is close.

    In order: the same name in another case; a name ``word`` begins (``marketing`` for
    ``marketing_updates``, ``cloud`` for ``cloud_it_provider``: the shortest such name), or a
    name ``word`` begins with (``quick_quote_form`` for ``quick_quote``: the longest); else the
    name fewest edits away (insertions, deletions, substitutions and swaps of two neighbours),
    when those edits are at most two fifths of the longer name (``emial`` for ``email``,
    ``web_visit`` for ``website_visit``; ties go to the name sharing the longer start, then to
    the first in sorted order); else the name :mod:`difflib` finds most alike, if any."""
    names = sorted({str(n) for n in known})
    lower = word.lower()
    for name in names:
        if name.lower() == lower:
            return name
    if len(word) >= MIN_PREFIX:
        longer = [n for n in names if n.lower().startswith(lower)]
        if longer:
            return min(longer, key=len)
        shorter = [n for n in names if len(n) >= MIN_PREFIX and lower.startswith(n.lower())]
        if shorter:
            return max(shorter, key=len)
    best: tuple[int, int, str] | None = None
    for name in names:
        distance = _edits(lower, name.lower())
        if distance > max(1, 2 * max(len(word), len(name)) // 5):
            continue
        rank = (distance, -_common_start(lower, name.lower()), name)
        if best is None or rank < best:
            best = rank
    if best is not None:
        return best[2]
    # Last, what difflib finds alike (``routing`` for ``route``: three edits, one stem), so
    # nothing suggested before this helper is lost.
    alike = difflib.get_close_matches(word, names, n=1)
    return alike[0] if alike else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` naming :func:`closest`, or ``""``: the one way a message
    about an unknown name suggests a known one."""
    found = closest(word, known)
    return f"; did you mean {found!r}?" if found is not None else ""


def _common_start(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: Levenshtein's edits plus swapping two neighbours
    (the commonest typing slip, ``emial``), each counting one."""
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            current[j] = min(
                previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (0 if x == y else 1)
            )
            if before is not None and i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[len(b)]


def format_path(path: Sequence[str | int]) -> str:
    """Render a key path as TOML readers write it: ``purpose.analytics.basis[0].sources``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@attrs.frozen
class Problem:
    """One thing wrong with an input, and where it is."""

    message: str
    file: str | None = None
    path: tuple[str | int, ...] = ()
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            where += f": {format_path(self.path)}"
        return f"{where}: {self.message}"


class FairprocError(Exception):
    """Base class of every error fairproc raises on purpose."""


class ProblemsError(FairprocError):
    """Every problem found in one input, reported together rather than one at a time."""

    kind = "input"

    def __init__(self, problems: Iterable[Problem]):
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in {self.kind}"
        return head + ":\n" + "\n".join(f"  {p}" for p in self.problems)


class PolicyError(ProblemsError):
    """A policy folder (or one condition in it) could not be loaded."""

    kind = "policy"


class InputError(ProblemsError):
    """A record, event, instant or question given to the engine is not valid."""

    kind = "input"

    @classmethod
    def one(
        cls,
        message: str,
        *,
        file: str | None = None,
        path: Sequence[str | int] = (),
        line: int | None = None,
    ) -> InputError:
        return cls([Problem(message, file=file, path=tuple(path), line=line)])
