"""fairproc: a privacy notice as executable, testable, explainable rules.

>>> import datetime as dt
>>> from fairproc import Engine, Record, World, load_policy
>>> policy = load_policy("flexioffices")
>>> record = Record("r1", "ada", "quick_quote", dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC),
...                 {"name": "Ada", "email": "ada@example.com"})
>>> engine = Engine(policy, World([record]))
>>> engine.route("r1", at=record.collected_at).outcome
'pass_to_providers'
"""

from typing import TYPE_CHECKING, Any

from fairproc.clock import Period
from fairproc.conditions import Condition
from fairproc.decisions import Check, Decision, Finding
from fairproc.engine import Engine
from fairproc.errors import FairprocError, InputError, PolicyError, Problem
from fairproc.loader import load_policy, shipped_policies
from fairproc.model import Event, Policy, Record, SuppressionEntry
from fairproc.world import HistorySource, SubjectHistory, World

if TYPE_CHECKING:
    from fairproc.lint import LintFinding, lint
    from fairproc.storage import AuditEntry, ChangeSet, Store, StoreError, open_store

# The edges a host may never touch (lint and its interop tables, the store) are imported on
# first use: a process that only asks questions starts without them.
_LAZY = {
    "LintFinding": "fairproc.lint",
    "lint": "fairproc.lint",
    "AuditEntry": "fairproc.storage",
    "ChangeSet": "fairproc.storage",
    "Store": "fairproc.storage",
    "StoreError": "fairproc.storage",
    "open_store": "fairproc.storage",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fairproc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AuditEntry",
    "ChangeSet",
    "Check",
    "Condition",
    "Decision",
    "Engine",
    "Event",
    "FairprocError",
    "Finding",
    "HistorySource",
    "InputError",
    "LintFinding",
    "Period",
    "Policy",
    "PolicyError",
    "Problem",
    "Record",
    "Store",
    "StoreError",
    "SubjectHistory",
    "SuppressionEntry",
    "World",
    "lint",
    "load_policy",
    "open_store",
    "shipped_policies",
]
__version__ = "0.1.0"
