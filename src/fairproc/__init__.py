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

from fairproc.errors import FairprocError, InputError, PolicyError, Problem
from fairproc.loader import load_policy, shipped_policies

if TYPE_CHECKING:
    from fairproc.clock import Period
    from fairproc.conditions import Condition
    from fairproc.decisions import Check, Decision, Finding
    from fairproc.engine import Engine
    from fairproc.lint import LintFinding, lint
    from fairproc.model import Event, Policy, Record, SuppressionEntry
    from fairproc.storage import AuditEntry, ChangeSet, Store, StoreError, open_store
    from fairproc.world import HistorySource, SubjectHistory, World

# Imported on first use: loading a policy needs neither the engine nor its decisions, and a
# process that only asks questions starts without lint and its interop tables or the store.
_LAZY = {
    "Period": "fairproc.clock",
    "Condition": "fairproc.conditions",
    "Check": "fairproc.decisions",
    "Decision": "fairproc.decisions",
    "Finding": "fairproc.decisions",
    "Engine": "fairproc.engine",
    "LintFinding": "fairproc.lint",
    "lint": "fairproc.lint",
    "Event": "fairproc.model",
    "Policy": "fairproc.model",
    "Record": "fairproc.model",
    "SuppressionEntry": "fairproc.model",
    "AuditEntry": "fairproc.storage",
    "ChangeSet": "fairproc.storage",
    "Store": "fairproc.storage",
    "StoreError": "fairproc.storage",
    "open_store": "fairproc.storage",
    "HistorySource": "fairproc.world",
    "SubjectHistory": "fairproc.world",
    "World": "fairproc.world",
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
