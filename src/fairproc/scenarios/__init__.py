"""Documented rule scenarios: a small world, a clock and the outcomes the policy must give.

The file format and the CLI contract are fixed in ``shared/spec/scenarios.md``. The package
reads in three steps, a module each:

* :mod:`~fairproc.scenarios.reading`: a file to a checked :class:`Scenario` (errors name file,
  key path and line; an unreadable file never stops the others from running);
* :mod:`~fairproc.scenarios.stores`: where its world is put (memory, or a store a URL names);
* :mod:`~fairproc.scenarios.running`: each expectation asked and compared, in file order.

:mod:`~fairproc.scenarios.asks` holds the one list of what can be asked, which the reader, the
runner and the CLI share.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fairproc.scenarios.asks import ASKS, COMMON, ID_KINDS, Ask, explainable
    from fairproc.scenarios.reading import (
        Expectation,
        Scenario,
        ScenarioError,
        find_files,
        is_scenario_file,
        load_scenario,
    )
    from fairproc.scenarios.running import (
        ExpectationResult,
        ScenarioResult,
        coverage,
        exit_status,
        iter_results,
        run_expectation,
        run_paths,
        run_scenario,
    )
    from fairproc.scenarios.stores import ReleasingFactory, StoreFactory, UrlStores, memory_store

# Read on first use: the CLI imports the list of asks without the reader and runner.
_LAZY = {
    **dict.fromkeys(["ASKS", "COMMON", "ID_KINDS", "Ask", "explainable"], "asks"),
    **dict.fromkeys(
        [
            "Expectation",
            "Scenario",
            "ScenarioError",
            "find_files",
            "is_scenario_file",
            "load_scenario",
        ],
        "reading",
    ),
    **dict.fromkeys(
        [
            "ExpectationResult",
            "ScenarioResult",
            "coverage",
            "exit_status",
            "iter_results",
            "run_expectation",
            "run_paths",
            "run_scenario",
        ],
        "running",
    ),
    **dict.fromkeys(["ReleasingFactory", "StoreFactory", "UrlStores", "memory_store"], "stores"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fairproc.scenarios' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"fairproc.scenarios.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ASKS",
    "COMMON",
    "ID_KINDS",
    "Ask",
    "Expectation",
    "ExpectationResult",
    "ReleasingFactory",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "StoreFactory",
    "UrlStores",
    "coverage",
    "exit_status",
    "explainable",
    "find_files",
    "is_scenario_file",
    "iter_results",
    "load_scenario",
    "memory_store",
    "run_expectation",
    "run_paths",
    "run_scenario",
]
