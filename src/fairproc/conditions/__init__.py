"""The condition language: one small AST that every backend compiles from.

A condition is a Python-like expression written in a rule file::

    at < subject.last_interaction + P4Y
    record.source in ['quick_quote', 'multiquote'] and not subject.suppressed
    in_office_hours(record.collected_at)

It is parsed once with :mod:`ast` under a whitelist (never ``eval``), checked against the
policy's vocabulary (names, their types, the ids an enum may hold) and compiled to Python
closures. The SQL and durable-rules backends compile the same AST.

Semantics every backend keeps:

* A value may be missing (``subject.office_let`` for a subject who never let an office).
  Any comparison or ``in`` test with a missing operand is false, ``!=`` included;
  ``x is None`` / ``x is not None`` test for it; shifting a missing instant gives a missing one.
* ``and``, ``or`` and ``not`` are two-valued: their operands are always true or false.
* Instants compare as instants, whatever offset they were written with. Periods added to an
  instant use calendar arithmetic on the policy's local clock (see :class:`fairproc.clock.Period`).

The package, a module a step: :mod:`~fairproc.conditions.nodes` (kinds, types, the AST,
rendering, what a tree reads), :mod:`~fairproc.conditions.names` (what a vocabulary is),
:mod:`~fairproc.conditions.parse`, :mod:`~fairproc.conditions.check`,
:mod:`~fairproc.conditions.interpret` (the reference interpreter),
:mod:`~fairproc.conditions.to_python` (the Python backend) and
:mod:`~fairproc.conditions.condition` (:class:`Condition`: all of them once). The policy's own
vocabulary (what each kind of rule may read, and how a question gives it) is
:mod:`fairproc.conditions.vocabulary`, imported on its own: it reads the model, which itself
imports this package.
"""

from fairproc.conditions.check import check
from fairproc.conditions.condition import Condition
from fairproc.conditions.interpret import interpret
from fairproc.conditions.names import Function, Getter, Name, Vocabulary
from fairproc.conditions.nodes import (
    BOOL,
    DATE,
    INSTANT,
    NONE,
    NUMBER,
    ORDERED,
    PERIOD,
    STRING,
    TIME,
    And,
    Call,
    Compare,
    Const,
    In,
    Kind,
    ListOf,
    Node,
    Not,
    Or,
    Present,
    Ref,
    Shift,
    Type,
    reads,
    render,
)
from fairproc.conditions.parse import MAX_CONDITION_LENGTH, MAX_DEPTH, ConditionError, parse
from fairproc.conditions.to_python import MEMO_SIZE, Compiled, compile_python, remember

__all__ = [
    "BOOL",
    "DATE",
    "INSTANT",
    "MAX_CONDITION_LENGTH",
    "MAX_DEPTH",
    "MEMO_SIZE",
    "NONE",
    "NUMBER",
    "ORDERED",
    "PERIOD",
    "STRING",
    "TIME",
    "And",
    "Call",
    "Compare",
    "Compiled",
    "Condition",
    "ConditionError",
    "Const",
    "Function",
    "Getter",
    "In",
    "Kind",
    "ListOf",
    "Name",
    "Node",
    "Not",
    "Or",
    "Present",
    "Ref",
    "Shift",
    "Type",
    "Vocabulary",
    "check",
    "compile_python",
    "interpret",
    "parse",
    "reads",
    "remember",
    "render",
]
