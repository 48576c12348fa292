"""The testing kit: the pytest plugin (through pytester), the assertion helpers, the clock and
world builder, and the example host project run the way a host runs it."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from fairproc import Engine, InputError, Record, World, load_policy
from fairproc.testing import (
    DEFAULT_NOW,
    Clock,
    DecisionAssertionError,
    EngineBuilder,
    assert_allowed,
    assert_cites_known_rules,
    assert_denial_explained,
    assert_denied,
    assert_outcome,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_HOST = Path(__file__).resolve().parent / "example_host"
SHIPPED = ROOT / "rules" / "flexioffices" / "scenarios"
UTC = dt.UTC
POLICY = load_policy("flexioffices")

SATURDAY_QUOTE = """\
[scenario]
title = "A Saturday quick quote goes straight to office providers"
policy = "flexioffices"
now = 2026-11-21T10:00:00Z

[[record]]
id = "r1"
subject = "ada"
source = "quick_quote"
collected_at = 2026-11-21T10:00:00Z
data = { name = "Ada Lovelace", email = "ada@example.com" }

[[expect]]
ask = "route"
record = "r1"
outcome = "{route}"

[[expect]]
title = "the quote may be passed to providers"
ask = "may_process"
record = "r1"
purpose = "provider_introduction"
outcome = "allowed"
basis = "contract"
"""

ERASURE_THEN_EMAIL = """\
[scenario]
title = "After an erasure no newsletter goes"
policy = "flexioffices"
now = 2026-11-04T10:00:00Z

[[record]]
id = "q1"
subject = "ada"
source = "quick_quote"
collected_at = 2026-10-01T10:00:00Z
data = { name = "Ada Lovelace", email = "ada@example.com" }

[[expect]]
ask = "request"
subject = "ada"
right = "erasure"
outcome = "granted"

[[expect]]
ask = "may_email"
subject = "ada"
at = 2026-11-05T10:00:00Z
outcome = "denied"
reasons = ["suppressed"]
"""


def scenario(route: str = "pass_to_providers") -> str:
    return SATURDAY_QUOTE.replace("{route}", route)


# --- the plugin is installed -----------------------------------------------------------------


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    entry = [e for e in metadata.entry_points(group="pytest11") if e.name == "fairproc"]
    assert [e.value for e in entry] == ["fairproc.testing.plugin"]


def test_the_plugin_is_loaded_by_a_plain_pytest_run(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    assert config.pluginmanager.has_plugin("fairproc")
    assert not pytester.parseconfig("-p", "no:fairproc").pluginmanager.has_plugin("fairproc")


def test_neither_the_plugin_nor_the_kit_imports_hypothesis() -> None:
    code = (
        "import sys; import fairproc.testing, fairproc.testing.plugin; "
        "assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_pytest_runs_with_the_plugin_turned_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    assert 1 + 1 == 2\n")
    pytester.path.joinpath("quote.toml").write_text(scenario(), encoding="utf-8")
    result = pytester.runpytest("-p", "no:fairproc", ".")
    result.assert_outcomes(passed=1)
    # A conftest that opts its folder in still works, markers and warnings strict.
    write(pytester, "host/scenarios/quote.toml", scenario())
    write(
        pytester,
        "host/conftest.py",
        "from fairproc.testing.plugin import collect_scenario_files as pytest_collect_file\n",
    )
    strict = ("-p", "no:fairproc", "--strict-markers", "-W", "error")
    pytester.runpytest(*strict, "host").assert_outcomes(passed=2)
    marked = pytester.runpytest("--strict-markers", "-W", "error", "-m", "fairproc_scenario", ".")
    marked.assert_outcomes(passed=4, deselected=1)


# --- fixtures --------------------------------------------------------------------------------


def test_the_fixtures_give_the_reference_policy_a_pinned_clock_and_a_world(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import datetime as dt
        from fairproc.testing import DEFAULT_NOW, assert_allowed, assert_denied

        def test_policy(fairproc_policy):
            assert fairproc_policy.id == "flexioffices"

        def test_clock(fairproc_clock):
            assert fairproc_clock.now == DEFAULT_NOW
            assert fairproc_clock() == DEFAULT_NOW
            fairproc_clock.advance("P1M")
            assert fairproc_clock.now == dt.datetime(2026, 12, 23, 10, tzinfo=dt.UTC)

        def test_engine(fairproc_engine, fairproc_clock):
            fairproc_engine.add_record("q1", "ada", "quick_quote", email="ada@example.com")
            assert_allowed(fairproc_engine.may_email("ada"))
            fairproc_engine.add_event("ada", "unsubscribed")
            fairproc_clock.advance(dt.timedelta(seconds=1))
            assert_denied(fairproc_engine.may_email("ada"), reasons=["suppressed"])
            assert fairproc_engine.engine.policy.id == "flexioffices"
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_markers_pin_the_policy_and_the_clock(pytester: pytest.Pytester) -> None:
    policy = ROOT / "rules" / "flexioffices"
    shutil.copytree(policy, pytester.path / "mypolicy", ignore=shutil.ignore_patterns("scenarios"))
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.fairproc_policy("./mypolicy")

        def test_module_marker(fairproc_policy):
            assert fairproc_policy.path.endswith("mypolicy")

        @pytest.mark.fairproc_policy("flexioffices")
        def test_closest_marker_wins(fairproc_policy):
            assert not fairproc_policy.path.endswith("mypolicy")

        @pytest.mark.fairproc_now("2026-03-29T00:59:59Z")
        def test_now(fairproc_clock, fairproc_engine):
            assert fairproc_clock.now.isoformat() == "2026-03-29T00:59:59+00:00"
            record = fairproc_engine.add_record("q1", "ada", "quick_quote")
            assert record.collected_at == fairproc_clock.now
            # Elapsed time across the change to BST: one second later it is 02:00 BST.
            import datetime as dt
            local = fairproc_clock.advance(dt.timedelta(seconds=1)).astimezone(fairproc_clock.tz)
            assert (local.hour, local.minute) == (2, 0)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_ini_and_command_line_options_choose_the_policy_and_the_clock(
    pytester: pytest.Pytester,
) -> None:
    shutil.copytree(
        ROOT / "rules" / "flexioffices",
        pytester.path / "policies" / "ours",
        ignore=shutil.ignore_patterns("scenarios"),
    )
    pytester.makeini(
        """
        [pytest]
        fairproc_policy = policies/ours
        fairproc_now = 2030-01-01T09:00:00+00:00
        """
    )
    pytester.makepyfile(
        """
        def test_policy(fairproc_policy, fairproc_clock):
            assert fairproc_policy.path.endswith("ours")
            assert fairproc_clock.now.year == 2030
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    pytester.makepyfile(
        """
        def test_policy(fairproc_policy):
            assert not fairproc_policy.path.endswith("ours")
        """
    )
    pytester.runpytest("--fairproc-policy", "flexioffices").assert_outcomes(passed=1)


def test_an_unknown_policy_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fairproc_policy("flexioffice")
        def test_policy(fairproc_policy):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no policy named 'flexioffice'; did you mean 'flexioffices'?*"])


def test_the_clock_patches_a_host_applications_now(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        hostclock="""
        import datetime as dt

        def now():
            return dt.datetime.now(dt.UTC)
        """,
        test_patch="""
        import hostclock
        from fairproc.testing import DEFAULT_NOW

        def test_patched(fairproc_clock):
            fairproc_clock.patch("hostclock.now")
            assert hostclock.now() == DEFAULT_NOW

        def test_undone_after_the_test():
            assert hostclock.now() != DEFAULT_NOW
        """,
    )
    pytester.syspathinsert()
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


# --- assertion helpers -----------------------------------------------------------------------


def test_a_failed_assertion_shows_the_decisions_explanation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from fairproc.testing import assert_allowed

        def test_email(fairproc_engine):
            fairproc_engine.add_record("q1", "ada", "quick_quote", email="ada@example.com")
            fairproc_engine.add_event("ada", "unsubscribed", at="2026-11-01T00:00:00Z")
            assert_allowed(fairproc_engine.may_email("ada"))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected may_email to be ALLOWED, but it is DENIED*",
            "*may_email(subject=ada) at Mon 2026-11-23 10:00:00 GMT*DENIED*",
            "*[[]FAIL[]] processing.suppression (q1) -> suppressed*",
            '*notice: "If you choose to unsubscribe*',
        ]
    )
    # The helpers' own frames are hidden: the traceback points at the test.
    assert "def assert_allowed" not in result.stdout.str()


def helper_world() -> tuple[Engine, dt.datetime]:
    at = dt.datetime(2026, 11, 23, 10, tzinfo=UTC)
    records = [
        Record("q1", "ada", "quick_quote", at, {"email": "ada@example.com"}),
        Record("c1", "ada", "phone_call", at, {"phone": "+44 20 7946 0000"}),
    ]
    return Engine(POLICY, World(records)), at


def test_assert_allowed_and_denied() -> None:
    engine, at = helper_world()
    assert_allowed(engine.may_process("q1", "office_search", at), basis="contract")
    denied = engine.may_process("c1", "marketing_updates", at)
    assert assert_denied(denied, reasons=["purpose_not_declared"]) is denied
    assert_denied(denied, rules=["purpose.marketing_updates"])
    with pytest.raises(DecisionAssertionError) as caught:
        assert_allowed(denied)
    assert caught.value.decision is denied
    assert str(caught.value).startswith("expected may_process to be ALLOWED, but it is DENIED")
    assert denied.explain() in str(caught.value)
    with pytest.raises(AssertionError, match="expected reason objected among: purpose_not"):
        assert_denied(denied, reasons="objected")
    with pytest.raises(AssertionError, match="expected basis legitimate_interests, got contract"):
        assert_allowed(engine.may_process("q1", "office_search", at), basis="legitimate_interests")


def test_assert_outcome_checks_only_what_it_is_given() -> None:
    engine, at = helper_world()
    route = engine.route("q1", at)
    assert_outcome(route, "staff_contact", rules=["routing.enquiry", "office_hours"])
    retention = engine.retention("q1", at)
    assert_outcome(retention, "keep", until=None)
    with pytest.raises(AssertionError, match="expected until 2030-01-01T00:00:00Z, got none"):
        assert_outcome(retention, until="2030-01-01T00:00:00Z")
    share = engine.may_share("q1", "broadband_supplier", at)
    assert_outcome(share, "allowed", categories=["email"])
    with pytest.raises(AssertionError, match=r"expected categories \['email', 'name'\]"):
        assert_outcome(share, categories=["name", "email"])
    transfer = engine.transfer("cloud_it_provider", at)
    assert_outcome(transfer, "allowed", findings=["privacy_shield_invalid"])
    with pytest.raises(AssertionError, match="expected findings a, b among"):
        assert_outcome(transfer, findings=["a", "b"])
    handbook = EngineBuilder(POLICY, Clock(at))
    handbook.add_record("h1", "ada", "handbook_download")
    # Instants compare as instants, whatever offset they are written with.
    assert_outcome(handbook.route("h1"), "phone_follow_up", due="2026-11-25T11:00:00+01:00")


def test_the_property_helpers() -> None:
    engine, at = helper_world()
    for decision in (engine.may_email("ada", at), engine.may_email("nobody", at)):
        assert_denial_explained(decision)
        assert_cites_known_rules(decision, POLICY)
    made_up = attrs_evolve_rules(engine.may_email("nobody", at))
    with pytest.raises(AssertionError, match="cites rules that flexioffices does not have"):
        assert_cites_known_rules(made_up, POLICY)
    silent = attrs_evolve_no_checks(engine.may_email("nobody", at))
    with pytest.raises(AssertionError, match="names no rule that failed"):
        assert_denial_explained(silent)


def attrs_evolve_rules(decision):  # type: ignore[no-untyped-def]
    import attrs

    check = attrs.evolve(decision.checks[0], rule="purpose.made_up")
    return attrs.evolve(decision, checks=(check,))


def attrs_evolve_no_checks(decision):  # type: ignore[no-untyped-def]
    import attrs

    return attrs.evolve(decision, checks=())


def test_the_kits_docstring_examples_run() -> None:
    import doctest

    from fairproc.testing import assertions, harness, strategies

    for module in (assertions, harness, strategies):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried and not failures, module.__name__


# --- the clock and the builder ---------------------------------------------------------------


def test_the_clock_only_moves_when_told() -> None:
    clock = Clock("2024-01-31T12:00:00+00:00", tz=POLICY.tz)
    assert clock.advance("P1M").date() == dt.date(2024, 2, 29)
    assert clock.set("2026-10-25T00:30:00Z") == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # An hour of elapsed time across the change back to GMT: 01:30 BST, then 01:30 GMT.
    clock.set(clock.now.astimezone(POLICY.tz))
    later = clock.advance(dt.timedelta(hours=1))
    assert later.astimezone(UTC) == dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    # (A datetime in the repeated hour never equals one in another zone: compare as instants.)
    assert clock(UTC) == later.astimezone(UTC) and clock(UTC).tzinfo is UTC
    with pytest.raises(InputError, match="naive datetime"):
        clock.set(dt.datetime(2026, 1, 1))
    with pytest.raises(RuntimeError, match="only the fairproc_clock fixture"):
        clock.patch("datetime.datetime")
    assert "2026-10-25" in repr(clock)


def test_the_builder_checks_what_it_is_given() -> None:
    builder = EngineBuilder(POLICY)
    assert builder.clock.now == DEFAULT_NOW
    builder.add_record("q1", "ada", "quick_quote", data={"name": "Ada"}, email="ada@example.com")
    with pytest.raises(InputError, match="record id 'q1' is given twice"):
        builder.add_record("q1", "ada", "quick_quote")
    with pytest.raises(InputError, match="unknown source 'quick_quotes'"):
        builder.add_record("q2", "ada", "quick_quotes")
    with pytest.raises(InputError, match="quick_quote records do not collect 'ip_address'"):
        builder.add_record("q2", "ada", "quick_quote", ip_address="192.0.2.1")
    with pytest.raises(InputError, match="unknown event kind 'unsubscribe'"):
        builder.add_event("ada", "unsubscribe")
    with pytest.raises(InputError, match="names its record"):
        builder.add_event("ada", "enquiry_resolved")
    with pytest.raises(InputError, match="no record with id 'q9'"):
        builder.add_event("ada", "enquiry_resolved", record="q9")
    with pytest.raises(InputError, match="unknown purpose 'marketing'"):
        builder.add_event("ada", "objected", purpose="marketing")
    with pytest.raises(InputError, match="naive"):
        builder.add_event("ada", "website_visit", at=dt.datetime(2026, 1, 1))
    builder.add_event("ada", "enquiry_resolved", at="2026-12-01T12:00:00Z", record="q1")
    builder.suppress("ADA@example.com ", at="2026-11-01T00:00:00Z")
    assert_denied(builder.may_email("ada"), reasons=["suppressed"])
    assert_outcome(builder.retention("q1", at="2027-01-01T00:00:00Z"), "keep")
    assert_allowed(builder.may_share("q1", "office_provider"))
    assert_allowed(builder.transfer("email_service"))
    assert_allowed(builder.may_process("q1", "office_search"))
    assert len(builder.world().records) == 1
    other = builder(World())
    assert other is not builder.engine and other.store is not builder.engine.store
    assert builder() is builder.engine
    assert "1 records, 1 events, 1 suppression entries" in repr(builder)


# --- scenario files as test items ------------------------------------------------------------


def write(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_each_expectation_is_a_test_item_with_a_readable_id(pytester: pytest.Pytester) -> None:
    write(pytester, "scenarios/saturday.toml", scenario())
    write(pytester, "scenarios/not-a-scenario.toml", "[tool.something]\nkey = 1\n")
    result = pytester.runpytest("scenarios", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "scenarios/saturday.toml::expect[[]0[]] route r1",
            "scenarios/saturday.toml::expect[[]1[]] the quote may be passed to providers",
            "2 tests collected*",
        ]
    )
    result = pytester.runpytest("scenarios", "-v")
    result.assert_outcomes(passed=2)


def test_a_failing_expectation_shows_expected_actual_and_the_explanation(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, "scenarios/saturday.toml", scenario(route="staff_contact"))
    result = pytester.runpytest("scenarios")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ A Saturday quick quote goes straight to office providers: "
            "expect[[]0[]] route r1 _*",
            "expected outcome='staff_contact'",
            "     got outcome='pass_to_providers'",
            "saturday.toml:13: expect[[]0[]] route r1 (ask route at 2026-11-21T10:00:00Z)",
            "explanation:",
            "  route(record=r1) at Sat 2026-11-21 10:00:00 GMT*: PASS_TO_PROVIDERS",
            "*[[]info[]] routing.enquiry: in_office_hours(record.collected_at): no*",
            '*notice: "During office hours we will contact you*',
            "FAILED scenarios/saturday.toml::expect[[]0[]] route r1 - expected outcome=*",
        ]
    )


def test_an_unreadable_scenario_file_is_one_failing_item(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        "scenarios/naive.toml",
        """\
        [scenario]
        title = "A naive clock"
        policy = "flexioffices"
        now = 2026-11-21T10:00:00Z

        [[record]]
        id = "r1"
        subject = "ada"
        source = "quick_qoute"
        collected_at = 2026-11-21T10:00:00Z

        [[record]]
        id = "r2"
        subject = "ada"
        source = "quick_quote"
        collected_at = 2026-11-21T10:00:00
        """,
    )
    write(pytester, "scenarios/bad.toml", "[scenario]\ntitle = \n")
    write(pytester, "scenarios/good.toml", scenario())
    result = pytester.runpytest("scenarios")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*scenario file could not be read: *bad.toml:2: is not valid TOML*",
            "*scenario file could not be read: *naive.toml:9: record[[]0[]].source: unknown "
            "source 'quick_qoute'; did you mean 'quick_quote'?*",
            "and 1 more problem:",
            "*naive.toml:16: record[[]1[]].collected_at: naive date-time 2026-11-21T10:00:00*",
            "FAILED scenarios/bad.toml::[[]unreadable[]]*",
            "FAILED scenarios/naive.toml::[[]unreadable[]]*",
        ]
    )


def test_scenarios_are_collected_only_where_asked(pytester: pytest.Pytester) -> None:
    write(pytester, "scenarios/saturday.toml", scenario())
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    # No path given: pytest collects the current folder, but scenario files stay out of it.
    pytester.runpytest().assert_outcomes(passed=1)
    # Nor does a testpaths entry opt them in.
    pytester.makeini("[pytest]\ntestpaths = .\n")
    pytester.runpytest().assert_outcomes(passed=1)
    # Named on the command line: the folder, the file, or one item of it.
    pytester.runpytest(".").assert_outcomes(passed=3)
    pytester.runpytest("scenarios/saturday.toml").assert_outcomes(passed=2)
    pytester.runpytest("scenarios/saturday.toml::expect[0] route r1").assert_outcomes(passed=1)
    # Listed in the ini option: collected whenever pytest walks past them.
    pytester.makeini("[pytest]\nfairproc_scenarios = scenarios\n")
    pytester.runpytest().assert_outcomes(passed=3)
    pytester.runpytest("-m", "not fairproc_scenario").assert_outcomes(passed=1)


def test_a_conftest_can_opt_its_folder_in(pytester: pytest.Pytester) -> None:
    write(pytester, "host/scenarios/saturday.toml", scenario())
    write(pytester, "elsewhere/saturday.toml", scenario())
    write(
        pytester,
        "host/conftest.py",
        "from fairproc.testing.plugin import collect_scenario_files as pytest_collect_file\n",
    )
    pytester.runpytest().assert_outcomes(passed=2)
    # Named on the command line as well: still collected once.
    pytester.runpytest("host", "host/scenarios").assert_outcomes(passed=2)


def test_expectations_run_in_file_order_even_when_one_is_selected(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, "scenarios/erasure.toml", ERASURE_THEN_EMAIL)
    result = pytester.runpytest("scenarios", "-v")
    result.assert_outcomes(passed=2)
    # Selecting only the second expectation still runs it in a world the erasure changed.
    result = pytester.runpytest("scenarios", "-k", "may_email")
    result.assert_outcomes(passed=1, deselected=1)
    reordered = pytester.runpytest(
        "scenarios",
        "-p",
        "no:randomly",
        "--deselect",
        "scenarios/erasure.toml::expect[0] request ada erasure",
    )
    reordered.assert_outcomes(passed=1, deselected=1)


def test_the_shipped_scenarios_run_as_test_items(pytester: pytest.Pytester) -> None:
    shutil.copytree(SHIPPED, pytester.path / "scenarios")
    result = pytester.runpytest("scenarios", "-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 100
    assert "failed" not in outcomes and "errors" not in outcomes


# --- the example host project ----------------------------------------------------------------


def test_the_example_host_project_passes_on_a_plain_pytest_run(pytester: pytest.Pytester) -> None:
    """Copied on its own: its conftest and tests, nothing else; `pytest` with no arguments."""
    shutil.copytree(
        EXAMPLE_HOST,
        pytester.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=10)
    result.stdout.fnmatch_lines(
        [
            "scenarios/newsletter-suppression.toml::expect[[]1[]] may_email ada PASSED*",
            "test_newsletter.py::test_the_newsletter_never_reaches_a_suppressed_address PASSED*",
        ]
    )


def test_the_example_host_runs_from_the_repository_root() -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/example_host"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 passed" in done.stdout


def test_the_projects_own_run_leaves_the_example_host_alone() -> None:
    """`pytest` in the repository collects tests/ (testpaths) but not the example host, whose
    tests its own test runs above, and no scenario file under rules/."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tests/test_testing_kit.py::" in done.stdout
    assert "tests/example_host/" not in done.stdout
    assert ".toml::" not in done.stdout
