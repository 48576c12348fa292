"""fairproc's testing kit: what a host application's test suite needs to assert its policy
outcomes in a few lines.

* :mod:`fairproc.testing.assertions`: ``assert_allowed``, ``assert_denied``,
  ``assert_outcome``..., whose failure message is the decision's explanation;
* :mod:`fairproc.testing.harness`: a pinned :class:`Clock` and an :class:`EngineBuilder`;
* :mod:`fairproc.testing.plugin`: the pytest plugin (fixtures ``fairproc_policy``,
  ``fairproc_clock``, ``fairproc_engine``; scenario files as test items), loaded by pytest
  through the ``pytest11`` entry point;
* :mod:`fairproc.testing.strategies`: hypothesis strategies for valid worlds of any policy
  (imports hypothesis, which the ``dev`` extra installs; import it explicitly).

See ``docs/testing.md``.
"""

from fairproc.testing.assertions import (
    DecisionAssertionError,
    assert_allowed,
    assert_cites_known_rules,
    assert_denial_explained,
    assert_denied,
    assert_outcome,
)
from fairproc.testing.harness import DEFAULT_NOW, Clock, EngineBuilder

__all__ = [
    "DEFAULT_NOW",
    "Clock",
    "DecisionAssertionError",
    "EngineBuilder",
    "assert_allowed",
    "assert_cites_known_rules",
    "assert_denial_explained",
    "assert_denied",
    "assert_outcome",
]
