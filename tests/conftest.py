"""Fixtures shared by the test files; the builders themselves live in helpers.py."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from fairproc import Policy, load_policy
from helpers import ACME, WorldBuilder

# Decisions are fast, but the first example of a run compiles and caches; no deadline keeps
# the property tests free of timing flakes. Each test sets its own max_examples.
settings.register_profile(
    "fairproc", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("fairproc")


@pytest.fixture(scope="session")
def flexi() -> Policy:
    """The reference policy (the Flexioffices notice)."""
    return load_policy("flexioffices")


@pytest.fixture(scope="session")
def acme() -> Policy:
    """The second, made-up policy in tests/policies/acme."""
    return load_policy(ACME)


@pytest.fixture
def world(flexi: Policy) -> WorldBuilder:
    """An empty world for the reference policy; the default subject is 'ada'."""
    return WorldBuilder(flexi)
