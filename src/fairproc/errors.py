"""Errors fairproc raises: each names where the problem is and what was expected."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from fairproc.values import Value

MIN_PREFIX = 3  # a shorter word is the start of too many names to mean one of them


def closest_names(word: str, known: Iterable[str], n: int = 1) -> list[str]:
    """Up to ``n`` names in ``known`` that ``word`` most likely meant, the likeliest first.

    In order: the same name in another case; the names ``word`` begins (``marketing`` for
    ``marketing_updates``, ``cloud`` for ``cloud_it_provider``: the shortest first); the names
    fewest edits away (insertions, deletions, substitutions and swaps of two neighbours), where
    those edits are at most two fifths of the longer name (``emial`` for ``email``,
    ``web_visit`` for ``website_visit``; ties go to the name sharing the longer start, then to
    sorted order); the names ``word`` begins with (``quick_quote_form_v2`` for ``quick_quote``:
    the longest first); last, the names :mod:`difflib` finds alike (``routing`` for ``route``:
    three edits, one stem), so that nothing suggested before this helper is lost."""
    names = sorted({str(k) for k in known})
    lower = word.lower()
    ranked = [name for name in names if name.lower() == lower]
    if len(word) >= MIN_PREFIX:
        ranked += sorted((x for x in names if x.lower().startswith(lower)), key=len)
    near = []
    for name in names:
        limit = max(1, 2 * max(len(word), len(name)) // 5)
        if abs(len(name) - len(word)) > limit:
            continue  # at least that many edits: not worth counting
        distance = _edits(lower, name.lower())
        if distance <= limit:
            near.append((distance, -_common_start(lower, name.lower()), name))
    ranked += [name for _, _, name in sorted(near)]
    # a name the word begins with, after the near ones: user.contact.emial means
    # user.contact.email more likely than user.contact
    ranked += sorted(
        (x for x in names if len(x) >= MIN_PREFIX and lower.startswith(x.lower())),
        key=lambda x: -len(x),
    )
    import difflib  # only a mistake needs it: not imported with fairproc

    ranked += difflib.get_close_matches(word, names, n=max(n, 1))
    return list(dict.fromkeys(ranked))[:n]


def closest(word: str, known: Iterable[str]) -> str | None:
    """The name in ``known`` that ``word`` most likely meant (:func:`closest_names`), or
    None when none is close."""
    found = closest_names(word, known)
    return found[0] if found else None


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` naming :func:`closest`, or ``""``: the one way a message
    about an unknown name suggests a known one."""
    return suggesting(closest_names(word, known))


def suggesting(names: Sequence[str], *, quoted: bool = True) -> str:
    """The words that offer ``names`` (best first): ``"; did you mean 'a' or 'b'?"``, or
    ``""`` for none. ``quoted=False`` for names that read as they are (``dpv:Member``)."""
    if not names:
        return ""
    shown = [repr(name) if quoted else name for name in names]
    return f"; did you mean {' or '.join(shown)}?"


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


@attrs.frozen(repr=False)
class Problem(Value):
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
