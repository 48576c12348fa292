"""Every value class prints through :class:`fairproc.values.Value`'s one ``__repr__``, exactly as
attrs would have printed it, so no class compiles a repr of its own when it is made."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import attrs
import fairproc.adapters as fairproc_adapters
import pytest

import fairproc
from fairproc.values import Value


def _modules() -> Iterator[Any]:
    # the adapters are a package of their own in a checkout (adapters/), fairproc's in a wheel
    names = {
        info.name
        for package in (fairproc, fairproc_adapters)
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    }
    for name in sorted(names):
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as missing:  # an optional extra not installed here
            if (missing.name or "").startswith("fairproc"):
                raise


def _attrs_classes() -> list[type]:
    found = {}
    for module in _modules():
        for value in vars(module).values():
            if isinstance(value, type) and attrs.has(value) and value.__module__ == module.__name__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


CLASSES = _attrs_classes()


def test_the_walk_finds_the_model_and_the_condition_nodes() -> None:
    names = {cls.__qualname__ for cls in CLASSES}
    assert {"Policy", "Record", "Purpose", "Compare", "Period", "Problem", "Compiled"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_every_attrs_class_is_a_value_without_a_compiled_repr(cls: type) -> None:
    assert issubclass(cls, Value)
    # its own repr written by hand (Policy's), or Value's: never one attrs compiled for it
    own = cls.__repr__
    assert own is Value.__repr__ or own.__qualname__ == f"{cls.__qualname__}.__repr__"
    assert "attrs generated" not in own.__code__.co_filename


def _pair(**options: Any) -> tuple[type, type]:
    """The same class twice: repr compiled by attrs, and repr from Value."""

    def fields() -> dict[str, Any]:
        return {
            "name": attrs.field(),
            "secret": attrs.field(repr=False, default="hidden"),
            "shown": attrs.field(repr=lambda v: f"<{len(v)} items>", default=()),
            "nested": attrs.field(default=None),
        }

    compiled = attrs.make_class("Thing", fields(), frozen=True, **options)
    shared = attrs.make_class("Thing", fields(), bases=(Value,), frozen=True, repr=False, **options)
    return compiled, shared


@pytest.mark.parametrize("slots", [True, False])
def test_value_prints_as_attrs_does(slots: bool) -> None:
    compiled, shared = _pair(slots=slots)
    inner_compiled, inner_shared = _pair(slots=slots)
    for args in [("ada",), ("ada", "key", (1, 2, 3)), ("it's", "k", (), "x\n")]:
        assert repr(shared(*args)) == repr(compiled(*args))
        nested = {"nested": inner_shared("b")}
        assert repr(shared(*args[:3], **nested)) == repr(
            compiled(*args[:3], nested=inner_compiled("b"))
        )


def test_a_value_holding_itself_prints_as_attrs_does() -> None:
    fields = {"name": attrs.field(), "inner": attrs.field(default=None)}
    compiled = attrs.make_class("Loop", fields)
    shared = attrs.make_class("Loop", dict(fields), bases=(Value,), repr=False)
    a, b = compiled("a"), shared("a")
    a.inner, b.inner = [a], [b]
    assert repr(b) == repr(a) == "Loop(name='a', inner=[...])"
