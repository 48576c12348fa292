"""Errors fairproc raises: each names where the problem is and what was expected."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs


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
