"""The ``fairproc`` command line, driven through click's CliRunner."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner, Result

from fairproc.cli import main

SCENARIOS = Path(__file__).resolve().parent.parent / "rules" / "flexioffices" / "scenarios"

GOOD = textwrap.dedent(
    """\
    [scenario]
    title = "A Saturday quick quote goes to providers"
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
    outcome = "pass_to_providers"

    [[expect]]
    ask = "may_process"
    record = "r1"
    purpose = "marketing_updates"
    outcome = "allowed"
    basis = "legitimate_interests"
    """
)

# One wrong expectation: a Saturday enquiry is not handled by staff.
FAILING = GOOD.replace(
    'title = "A Saturday quick quote goes to providers"',
    'title = "A wrong expectation about Saturday"',
).replace('outcome = "pass_to_providers"', 'outcome = "staff_contact"')

# Broken files: (file name, text, the place the message must name, words it must hold)
BROKEN = [
    ("bad-toml.toml", GOOD.replace('policy = "flexioffices"', 'policy = "flexioffices'),
     ".toml:3", "not valid TOML"),
    ("unknown-id.toml", GOOD.replace('record = "r1"\noutcome', 'record = "r9"\noutcome'),
     "expect[0].record", "unknown record 'r9'"),
    ("naive.toml", GOOD.replace("now = 2026-11-21T10:00:00Z", "now = 2026-11-21T10:00:00"),
     "scenario.now", "naive"),
    ("unknown-ask.toml", GOOD.replace('ask = "route"', 'ask = "routing"'),
     "expect[0].ask", "unknown ask 'routing'"),
]  # fmt: skip


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- scenarios run: exit statuses --------------------------------------------------------------


def test_shipped_scenarios_pass_with_exit_0() -> None:
    result = run("scenarios", "run", str(SCENARIOS))
    assert result.exit_code == 0, result.output
    assert ", 0 failed" in result.stdout
    assert "FAIL" not in result.stdout


def test_a_passing_file_exits_0(tmp_path: Path) -> None:
    result = run("scenarios", "run", str(write(tmp_path, "good.toml", GOOD)))
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.stdout


def test_a_failing_expectation_exits_1_and_explains_itself(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD)
    write(tmp_path, "failing.toml", FAILING)
    result = run("scenarios", "run", str(tmp_path))
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "FAIL" in out and "failing.toml" in out
    assert "expected staff_contact, actual pass_to_providers" in out
    # the explanation: the rules that fired and the notice's words behind them
    assert "routing.enquiry" in out and "notice:" in out
    assert "PASS" in out and "good.toml" in out


@pytest.mark.parametrize(("name", "text", "place", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_file_exits_2_naming_file_and_place_and_the_others_still_run(
    tmp_path: Path, name: str, text: str, place: str, words: str
) -> None:
    write(tmp_path, "a-good.toml", GOOD)
    write(tmp_path, "z-failing.toml", FAILING)
    write(tmp_path, name, text)
    result = run("scenarios", "run", str(tmp_path))
    assert result.exit_code == 2, result.output
    out = result.stdout
    error_lines = [line for line in out.splitlines() if name in line and place in line]
    assert error_lines, out
    assert any(words in line for line in error_lines), out
    # the other files were run, and reported as usual
    assert "a-good.toml" in out and "z-failing.toml" in out
    assert "3 passed, 1 failed, 1 file error" in out


def test_a_broken_file_is_reported_in_json_too(tmp_path: Path) -> None:
    write(tmp_path, "a-good.toml", GOOD)
    write(tmp_path, "naive.toml", BROKEN[2][1])
    result = run("scenarios", "run", "--format", "json", str(tmp_path))
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    by_file = {Path(s["file"]).name: s for s in doc["scenarios"]}
    assert by_file["a-good.toml"]["passed"] is True
    assert by_file["naive.toml"]["passed"] is False
    assert any("scenario.now" in e for e in by_file["naive.toml"]["errors"])


def test_a_missing_path_exits_2(tmp_path: Path) -> None:
    result = run("scenarios", "run", str(tmp_path / "nothing-here"))
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr


def test_a_shipped_policys_name_runs_its_scenarios_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fairproc scenarios run flexioffices` works outside a checkout (issue 16, item 5)."""
    monkeypatch.chdir(tmp_path)  # no rules/ folder here
    result = run("scenarios", "run", "flexioffices", "--format", "json")
    assert result.exit_code == 0, result.stderr
    files = {Path(s["file"]).name for s in json.loads(result.stdout)["scenarios"]}
    assert files == {p.name for p in SCENARIOS.glob("*.toml")}


def test_a_misspelt_policy_name_is_named_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("scenarios", "run", "flexioffice")
    assert result.exit_code == 2
    assert "nor a shipped policy's name; did you mean 'flexioffices'?" in result.stderr


def test_a_folder_named_like_a_policy_is_read_as_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flexioffices").mkdir()
    # (its policy by path: the name would now find this folder, as load_policy reads names)
    mine = GOOD.replace('policy = "flexioffices"', f'policy = "{SCENARIOS.parent}"')
    (tmp_path / "flexioffices" / "mine.toml").write_text(mine, encoding="utf-8")
    result = run("scenarios", "run", "flexioffices", "--format", "json")
    assert result.exit_code == 0
    assert [Path(s["file"]).name for s in json.loads(result.stdout)["scenarios"]] == ["mine.toml"]


def test_a_folder_without_scenarios_exits_2(tmp_path: Path) -> None:
    write(tmp_path, "settings.toml", 'name = "not a scenario"\n')
    result = run("scenarios", "run", str(tmp_path))
    assert result.exit_code == 2
    assert "no scenario files found" in result.stderr


def test_scenarios_run_needs_a_path() -> None:
    result = run("scenarios", "run")
    assert result.exit_code == 2
    assert "PATHS" in result.output


def test_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    result = run("scenarios", "run", "--format", "yaml", str(write(tmp_path, "g.toml", GOOD)))
    assert result.exit_code == 2
    assert "yaml" in result.output


# --- scenarios run: formats and options --------------------------------------------------------


def test_text_verbose_explains_passing_expectations(tmp_path: Path) -> None:
    path = str(write(tmp_path, "good.toml", GOOD))
    quiet = run("scenarios", "run", path).stdout
    loud = run("scenarios", "run", "--verbose", path).stdout
    assert "notice:" not in quiet
    assert "notice:" in loud and "ROUTE" in loud.upper()


def test_json_format(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD)
    write(tmp_path, "failing.toml", FAILING)
    result = run("scenarios", "run", "--format", "json", str(tmp_path))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["summary"] == {"passed": 3, "failed": 1, "file_errors": 0}
    scenarios = {Path(s["file"]).name: s for s in doc["scenarios"]}
    assert set(scenarios) == {"good.toml", "failing.toml"}
    for s in doc["scenarios"]:
        assert set(s) >= {"file", "title", "passed", "expectations"}
        for e in s["expectations"]:
            assert set(e) >= {"ask", "passed", "expected", "actual", "explanation"}
            assert isinstance(e["explanation"], list) and e["explanation"]
            assert all("rule" in c and "clause" in c for c in e["explanation"])
    assert scenarios["good.toml"]["title"] == "A Saturday quick quote goes to providers"
    assert scenarios["good.toml"]["passed"] is True
    failed = scenarios["failing.toml"]
    assert failed["passed"] is False
    route = failed["expectations"][0]
    assert route["ask"] == "route" and route["passed"] is False
    assert route["expected"] == {"outcome": "staff_contact"}
    assert route["actual"] == {"outcome": "pass_to_providers"}
    process = scenarios["good.toml"]["expectations"][1]
    assert process["actual"] == {"outcome": "allowed", "basis": "legitimate_interests"}


def test_junit_format_is_xml(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD)
    write(tmp_path, "failing.toml", FAILING)
    write(tmp_path, "naive.toml", BROKEN[2][1])
    result = run("scenarios", "run", "--format", "junit", str(tmp_path))
    assert result.exit_code == 2
    root = ET.fromstring(result.stdout.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 3
    assert len(root.findall(".//testcase")) == 2 + 2 + 1
    assert len(root.findall(".//failure")) == 1
    assert len(root.findall(".//error")) == 1


def test_markdown_format_has_the_titles(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD)
    write(tmp_path, "failing.toml", FAILING)
    result = run("scenarios", "run", "--format", "markdown", str(tmp_path))
    assert result.exit_code == 1
    out = result.stdout
    assert out.startswith("# Scenario report")
    assert "A Saturday quick quote goes to providers" in out
    assert "A wrong expectation about Saturday" in out
    assert "**FAIL**" in out


def test_coverage_lists_rules_no_passing_expectation_cites(tmp_path: Path) -> None:
    path = str(write(tmp_path, "good.toml", GOOD))
    text = run("scenarios", "run", "--coverage", path)
    assert text.exit_code == 0
    assert "rule coverage for flexioffices:" in text.stdout
    assert "not covered: recipient.court" in text.stdout
    # with a machine format the report stays parseable and coverage goes to stderr
    as_json = run("scenarios", "run", "--coverage", "--format", "json", path)
    json.loads(as_json.stdout)
    assert "rule coverage for flexioffices:" in as_json.stderr


def test_shipped_scenarios_coverage_figure() -> None:
    result = run("scenarios", "run", "--coverage", str(SCENARIOS))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    head = next(x for x in lines if x.startswith("rule coverage for flexioffices:"))
    match = re.search(r"(\d+)/(\d+) rules", head)
    assert match is not None
    uncovered = [x.split(": ", 1)[1] for x in lines if x.strip().startswith("not covered:")]
    assert int(match.group(2)) - int(match.group(1)) == len(uncovered)
    # every rule that answers a question is cited (reactions answer arrivals: not counted)
    assert uncovered == []
    assert match.group(1) == match.group(2)


def test_output_writes_the_report_to_a_file(tmp_path: Path) -> None:
    path = str(write(tmp_path, "good.toml", GOOD))
    target = tmp_path / "report.json"
    result = run("scenarios", "run", "--format", "json", "-o", str(target), path)
    assert result.exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8"))["summary"]["passed"] == 2
    assert "2 passed, 0 failed" in result.stderr


# --- lint ----------------------------------------------------------------------------------------


def test_lint_the_shipped_policy_exits_0() -> None:
    result = run("lint")
    assert result.exit_code == 0, result.output
    assert "flexioffices:" in result.stdout
    assert "source_without_categories" in result.stdout  # the office calculator


def test_lint_json() -> None:
    result = run("lint", "flexioffices", "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["policy"] == "flexioffices"
    codes = {f["code"] for f in doc["findings"]}
    assert "source_without_categories" in codes
    for f in doc["findings"]:
        assert set(f) == {"code", "severity", "message", "rule", "clause"}
        assert f["severity"] in {"error", "warning", "info"}


def test_lint_fail_on_warning_exits_1() -> None:
    assert run("lint", "--fail-on", "warning").exit_code == 1


def test_lint_at_a_date_before_schrems_ii() -> None:
    result = run("lint", "--at", "2020-07-15", "--format", "json")
    assert result.exit_code == 0
    json.loads(result.stdout)
    assert run("lint", "--at", "15/07/2020").exit_code == 2


def test_lint_an_unknown_policy_exits_2() -> None:
    result = run("lint", "flexiofices")
    assert result.exit_code == 2
    assert "did you mean 'flexioffices'" in result.stderr


# --- explain -------------------------------------------------------------------------------------


def test_explain_with_a_scenario_file() -> None:
    result = run(
        "explain",
        "may_process",
        "--scenario",
        str(SCENARIOS / "suppression-unsubscribed.toml"),
        "--record",
        "hb",
        "--purpose",
        "marketing_updates",
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "DENIED" in out
    assert "processing.suppression" in out and "-> suppressed" in out
    assert "notice:" in out


def test_explain_json_without_a_scenario() -> None:
    result = run(
        "explain", "transfer", "--recipient", "cloud_it_provider",
        "--at", "2020-07-16T00:00:00+01:00", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["question"] == "transfer" and doc["outcome"] == "allowed"
    assert [f["code"] for f in doc["findings"]] == ["privacy_shield_invalid"]
    assert "safeguard.privacy_shield" in doc["rules"]


def test_explain_each_question(tmp_path: Path) -> None:
    scenario = str(write(tmp_path, "good.toml", GOOD))
    asks = {
        "may_process": ["--record", "r1", "--purpose", "office_search"],
        "route": ["--record", "r1"],
        "may_share": ["--record", "r1", "--recipient", "court", "--court-order"],
        "transfer": ["--recipient", "email_service"],
        "may_email": ["--subject", "ada"],
        "retention": ["--record", "r1"],
    }
    for ask, args in asks.items():
        result = run("explain", ask, "--scenario", scenario, *args, "--format", "json")
        assert result.exit_code == 0, (ask, result.output)
        assert json.loads(result.stdout)["question"] == ask


def test_explain_usage_errors() -> None:
    missing = run("explain", "route", "--at", "2026-11-21T10:00:00Z")
    assert missing.exit_code == 2 and "--record" in missing.output
    no_clock = run("explain", "transfer", "--recipient", "court")
    assert no_clock.exit_code == 2 and "--at" in no_clock.output
    naive = run("explain", "transfer", "--recipient", "court", "--at", "2026-11-21T10:00:00")
    assert naive.exit_code == 2 and "naive" in naive.output
    unknown = run("explain", "transfer", "--recipient", "courts", "--at", "2026-11-21T10:00:00Z")
    assert unknown.exit_code == 2 and "unknown recipient 'courts'" in unknown.stderr
    no_record = run("explain", "route", "--record", "r1", "--at", "2026-11-21T10:00:00Z")
    assert no_record.exit_code == 2 and "no record with id 'r1'" in no_record.stderr


# --- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [[], ["lint"], ["scenarios"], ["scenarios", "run"], ["explain"]],
    ids=["fairproc", "lint", "scenarios", "scenarios-run", "explain"],
)
def test_help_on_every_command(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage:")
    short = run(*command, "-h")
    assert short.exit_code == 0 and short.stdout == result.stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert "version" in result.stdout
