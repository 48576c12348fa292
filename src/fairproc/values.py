"""The base every fairproc value class shares: :class:`Value`, whose one ``__repr__`` reads the
attrs fields, written once instead of compiled for each class.

attrs writes and compiles the methods of every class it makes when the class is made; the
``__repr__`` was about a third of that work, and the classes a policy load makes (the model,
the condition nodes, the clock) spend it on every process's start. So each value class is
declared ``@attrs.frozen(repr=False)`` (or ``attrs.define``) on :class:`Value`, and prints as
attrs would print it: ``Name(field=value, ...)``, honouring a field's ``repr=False`` or its own
repr function, and printing ``...`` for a value met again inside its own repr.

Imports only attrs.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

_printing = threading.local()  # .ids: the values this thread is printing, as attrs keeps them


class Value:
    """A base for attrs classes declared with ``repr=False``: their repr, as attrs writes it."""

    __slots__ = ()
    # what attrs sets on every class it makes, declared where typing.get_type_hints never looks
    if TYPE_CHECKING:
        __attrs_attrs__: ClassVar[tuple[attrs.Attribute[Any], ...]]

    def __repr__(self) -> str:
        printing: set[int] = _printing.__dict__.setdefault("ids", set())
        if id(self) in printing:
            return "..."  # a mutable value holding itself
        printing.add(id(self))
        try:
            shown = []
            for field in attrs.fields(type(self)):
                if field.repr is False:
                    continue
                value = getattr(self, field.name, attrs.NOTHING)
                text = repr(value) if field.repr is True else field.repr(value)
                shown.append(f"{field.name}={text}")
        finally:
            printing.discard(id(self))
        return f"{type(self).__qualname__.rsplit('>.', 1)[-1]}({', '.join(shown)})"
