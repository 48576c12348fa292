"""What a vocabulary is: the names (with their types and how a context gives their value) and
the functions a condition may use. The policy's own vocabulary is built in
:mod:`fairproc.conditions.vocabulary`.

Imports only :mod:`fairproc.conditions.nodes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from fairproc.conditions.nodes import Type
from fairproc.values import Value

Getter = Callable[[Any], Any]


@attrs.frozen(repr=False)
class Name(Value):
    name: str
    type: Type
    doc: str
    get: Getter = attrs.field(eq=False, repr=False)
    # True where the value may differ between records of one subject at one instant (a fact
    # that counts the asked record's own collection): never remembered per subject.
    per_record: bool = False


@attrs.frozen(repr=False)
class Function(Value):
    name: str
    params: tuple[Type, ...]
    returns: Type
    doc: str
    impl: Callable[..., Any] = attrs.field(eq=False, repr=False)  # impl(ctx, *args)
    missing: Any = None  # the result when an argument is missing


@attrs.frozen(repr=False)
class Vocabulary(Value):
    """What a condition in one kind of rule may read, and the ids each enum may hold."""

    names: Mapping[str, Name]
    functions: Mapping[str, Function]
    enums: Mapping[str, frozenset[str]]
