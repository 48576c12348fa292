"""Fixtures shared by the test files; the builders themselves live in helpers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture(scope="session", autouse=True)
def _policy_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Loaded policies are cached in a folder of the run's own, never the user's cache."""
    before = os.environ.get("FAIRPROC_CACHE_DIR")
    os.environ["FAIRPROC_CACHE_DIR"] = str(tmp_path_factory.mktemp("policy-cache"))
    yield
    if before is None:
        del os.environ["FAIRPROC_CACHE_DIR"]
    else:
        os.environ["FAIRPROC_CACHE_DIR"] = before


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
