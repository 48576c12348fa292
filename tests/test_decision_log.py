"""Notice versions, the decision log and audit entries naming the policy they were decided under."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fairproc import Engine, Record, World, load_policy
from fairproc.cli import main
from fairproc.decision_log import DecisionLog, read_log, verify
from fairproc.model import Event, Policy
from fairproc.rights import request
from fairproc.scenarios import find_files, load_scenario, run_paths
from fairproc.storage import ChangeSet, open_store, subject_audit

SHIPPED = Path(__file__).resolve().parent.parent / "rules" / "flexioffices"
SCENARIOS = SHIPPED / "scenarios"
T0 = dt.datetime(2026, 11, 2, 10, tzinfo=dt.UTC)  # a Monday, in office hours


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _world_values() -> set[Any]:
    """Every value of a category in the shipped scenarios' worlds, every suppressed address
    and every corrected value a request carries."""
    values: set[Any] = set()
    for path in find_files([SCENARIOS]):
        scenario = load_scenario(path)
        for record in scenario.records:
            values.update(v for v in record.data.values() if v is not None)
        values.update(entry.email for entry in scenario.suppression)
        for exp in scenario.expectations:
            for fields in (exp.params.get("corrections") or {}).values():
                values.update(fields.values())
    return values


def test_a_policy_carries_a_version_and_a_content_hash(tmp_path: Path) -> None:
    policy = load_policy("flexioffices")
    assert policy.info.version == "1.0"
    assert policy.digest is not None and policy.digest.startswith("sha256:")
    copy = tmp_path / "copy"
    shutil.copytree(SHIPPED, copy, ignore=shutil.ignore_patterns("scenarios"))
    assert load_policy(copy).digest == policy.digest  # the content, not the place
    notice = copy / "notice.txt"
    notice.write_text(notice.read_text(encoding="utf-8") + "\nA new sentence.\n", "utf-8")
    assert load_policy(copy).digest != policy.digest  # the notice's words count too


def test_the_shipped_scenarios_log_every_decision_and_no_value(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        results = run_paths([SCENARIOS], log=log)
    questions = [e for r in results for e in r.expectations if e.expectation.ask != "sweep"]
    lines = read_log(path)
    assert len(lines) == len(questions) > 200  # one line per decision asked, nothing nested
    assert [line.data["question"] for line in lines] == [e.expectation.ask for e in questions]
    policy = load_policy("flexioffices")
    for line in lines:
        assert line.data["policy"] == {
            "id": "flexioffices",
            "version": "1.0",
            "digest": policy.digest,
        }
    values = _world_values()
    assert len(values) > 30
    text = path.read_text(encoding="utf-8")
    # no value anywhere in the text (a value without a letter, such as a date, could be part
    # of an instant logged: those are checked as whole JSON values below)
    leaked = [v for v in values if isinstance(v, str) and any(c.isalpha() for c in v) and v in text]
    assert leaked == []
    for line in lines:
        found = [leaf for leaf in _leaves(line.data) if any(leaf == v for v in values)]
        assert found == [], line.line
    assert verify(lines, policy).ok


def test_an_engine_without_a_log_is_not_wrapped() -> None:
    engine = Engine(load_policy("flexioffices"), World())
    assert engine.log is None
    assert not set(vars(engine)) & {"may_process", "route", "retention", "may_email"}


def _world_store(url: str) -> Any:
    store = open_store(url)
    store.apply(
        ChangeSet(
            put_records=[
                Record("q1", "ada", "quick_quote", T0, {"name": "Ada Lovelace", "email": "a@x.uk"}),
                Record("h1", "bob", "handbook_download", T0, {"name": "Bob", "email": "b@x.uk"}),
            ],
            add_events=[Event("bob", "email_open", T0 + dt.timedelta(days=3))],
        )
    )
    return store


def _ask_some(engine: Engine) -> None:
    at = T0 + dt.timedelta(days=10)
    engine.route("q1", at)
    engine.may_process("q1", "marketing_updates", at)
    engine.may_share("q1", "office_provider", at)
    engine.may_email("bob", at)
    engine.retention("h1", at)
    engine.transfer("cloud_it_provider", at)


def test_verify_reruns_what_the_store_still_holds(tmp_path: Path) -> None:
    policy = load_policy("flexioffices")
    store = _world_store(f"sqlite:///{tmp_path}/log.db")
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        _ask_some(Engine(policy, store, log=log))
    lines = read_log(path)
    assert len(lines) == 6
    result = verify(lines, policy, store)
    assert result.ok and result.counts() == {"confirmed": 6}

    # bob's record goes: his decisions can no longer be re-run; ada's still are
    store.apply(ChangeSet(delete_records=["h1"]))
    result = verify(lines, policy, store)
    assert result.ok
    by_question = {lines[v.line - 1].data["question"]: v.status for v in result.verdicts}
    assert by_question == {
        "route": "confirmed",
        "may_process": "confirmed",
        "may_share": "confirmed",
        "may_email": "inputs_changed",
        "retention": "inputs_changed",
        "transfer": "confirmed",
    }
    store.close()


def test_a_log_is_continued_and_its_chain_checked(tmp_path: Path) -> None:
    policy = load_policy("flexioffices")
    path = tmp_path / "decisions.jsonl"
    for _ in range(2):  # a second log on the same file continues its chain
        with DecisionLog(path) as log:
            _ask_some(_engine(policy, log))
    lines = read_log(path)
    assert len(lines) == 12 and verify(lines, policy).ok

    text = path.read_text(encoding="utf-8").splitlines()
    edited = [*text[:3], text[3].replace('"outcome": "allowed"', '"outcome": "denied"'), *text[4:]]
    assert edited != text
    path.write_text("\n".join(edited) + "\n", encoding="utf-8")
    result = verify(read_log(path), policy)
    assert not result.ok and any("line 5: the chain is broken" in p for p in result.problems)

    path.write_text("\n".join(text[:5] + text[6:]) + "\n", encoding="utf-8")  # one removed
    result = verify(read_log(path), policy)
    assert [p for p in result.problems] == [
        "line 6: the chain is broken (the line before it was changed, removed or inserted)"
    ]


def _engine(policy: Policy, log: DecisionLog) -> Engine:
    world = World(
        [
            Record("q1", "ada", "quick_quote", T0, {"name": "Ada", "email": "a@x.uk"}),
            Record("h1", "bob", "handbook_download", T0, {"email": "b@x.uk"}),
        ]
    )
    return Engine(policy, world, log=log)


def test_verify_names_a_changed_policy(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        _ask_some(_engine(load_policy("flexioffices"), log))
    copy = tmp_path / "changed"
    shutil.copytree(SHIPPED, copy, ignore=shutil.ignore_patterns("scenarios"))
    retention = copy / "retention.toml"
    text = retention.read_text(encoding="utf-8")
    assert 'keep = "P10Y"' in text
    retention.write_text(text.replace('keep = "P10Y"', 'keep = "P7Y"', 1), encoding="utf-8")
    result = verify(read_log(path), load_policy(copy))
    assert not result.ok
    assert len(result.problems) == 6
    assert all("content hash differs" in p for p in result.problems)


def test_a_request_is_logged_once_and_its_audit_entries_name_the_policy(tmp_path: Path) -> None:
    policy = load_policy("flexioffices")
    store = _world_store(f"sqlite:///{tmp_path}/audit.db")
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        engine = Engine(policy, store, log=log)
        result = request(engine, "ada", "erasure", T0 + dt.timedelta(days=30), verified=True)
    assert result.decision.outcome == "granted"
    lines = read_log(path)
    assert [line.data["question"] for line in lines] == ["request"]
    assert lines[0].data["asked"] == {"subject": "ada", "right": "erasure"}
    entries = subject_audit(store, "ada")  # the log names ada by pseudonym
    assert entries
    assert {(e.policy_version, e.policy_digest) for e in entries} == {("1.0", policy.digest)}
    store.close()


def test_cli_log_show_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    runner = CliRunner()
    ran = runner.invoke(
        main,
        ["scenarios", "run", str(SCENARIOS / "routing-friday-1729.toml"), "--log", str(path)],
    )
    assert ran.exit_code == 0, ran.output
    shown = runner.invoke(main, ["log", "show", str(path)])
    assert shown.exit_code == 0
    assert "route(record=r1) -> staff_contact" in shown.output
    assert shown.output.rstrip().endswith("2 decisions")
    as_json = runner.invoke(main, ["log", "show", str(path), "--format", "json"])
    assert [d["outcome"] for d in json.loads(as_json.output)] == ["staff_contact"] * 2
    checked = runner.invoke(main, ["log", "verify", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "verified" in checked.output and "1.0" in checked.output

    path.write_text(path.read_text().replace("staff_contact", "pass_to_providers", 1))
    checked = runner.invoke(main, ["log", "verify", str(path)])
    assert checked.exit_code == 1
    assert "NOT verified" in checked.output
    path.write_text("not json\n")
    bad = runner.invoke(main, ["log", "verify", str(path)])
    assert bad.exit_code == 2 and "decisions.jsonl:1: is not JSON" in bad.output


def test_verify_through_the_cli_reruns_on_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    store = _world_store(url)
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        _ask_some(Engine(load_policy("flexioffices"), store, log=log))
    store.close()
    checked = CliRunner().invoke(main, ["log", "verify", str(path), "--store", url])
    assert checked.exit_code == 0, checked.output
    assert "6 confirmed" in checked.output


def test_a_record_passed_in_is_logged_by_categories(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    record = Record("x1", "cy", "quick_quote", T0, {"name": "Cy Secret", "email": "cy@x.uk"})
    with DecisionLog(path) as log:
        Engine(load_policy("flexioffices"), World(), log=log).may_process(
            record, "office_search", T0
        )
    line = read_log(path)[0].data
    assert line["inputs"]["record_given"]["categories"] == ["email", "name"]
    assert "Cy Secret" not in path.read_text() and "cy@x.uk" not in path.read_text()
    assert line["question"] == "may_process"
