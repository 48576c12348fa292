"""The mapping commands: `fairproc map check` reports every mismatch with file and line, `map
init` drafts a mapping, and `scenarios run`, `sweep`, `request` and `explain` take --map."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from fairproc.cli import main
from mapping_support import CRM_MAPPING, crm_host, crm_module

TEXT = CRM_MAPPING.read_text(encoding="utf-8")


@pytest.fixture
def host(tmp_path: Path) -> Iterator[str]:
    with crm_host("sqlite", tmp_path) as url:
        yield url


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_map_check_passes_on_the_example_host(host: str) -> None:
    code, out, _ = _run("map", "check", str(CRM_MAPPING), "--store", host)
    assert code == 0, out
    assert "agrees with the database" in out


def test_map_check_reports_every_mismatch_with_file_and_line(host: str, tmp_path: Path) -> None:
    engine = sa.create_engine(host)
    with engine.begin() as conn:
        # a table the mapping does not know, pointing at rows an erasure deletes
        conn.exec_driver_sql(
            "CREATE TABLE quotes (quote_id INTEGER PRIMARY KEY, "
            "enquiry_ref VARCHAR(255) NOT NULL REFERENCES enquiries (enquiry_ref))"
        )
    engine.dispose()
    text = (
        TEXT.replace('email = "email"', 'email = "e_mail"', 1)  # no such column
        .replace('collected_at = "held_at"', 'collected_at = "enquiry_ref"')  # not a timestamp
        .replace('timezone = "UTC"\n', "", 1)  # naive columns, no zone
        .replace('source = "phone_call"', 'source = "phone_calls"')  # unknown source
        .replace("[event.lettings]", "[event.letting]")  # no such table
    )
    path = tmp_path / "crm.toml"
    path.write_text(text, encoding="utf-8")
    code, out, _ = _run("map", "check", str(path), "--store", host)
    assert code == 1
    # the loader's problems (unknown names) come first and alone: fix them, then the schema
    assert f"crm.toml:{_line(text, 'phone_calls')}: record.calls.source: unknown source" in out
    path.write_text(text.replace("phone_calls", "phone_call"), encoding="utf-8")
    code, out, _ = _run("map", "check", str(path), "--store", host)
    assert code == 1
    lines = out.splitlines()

    def said(line: int, key: str, words: str) -> bool:
        return any(f"crm.toml:{line}: {key}: " in x and words in x for x in lines)

    assert said(_line(text, '"e_mail"'), "record.enquiries.categories.email", "no column 'e_mail'")
    assert said(
        _line(text, 'collected_at = "enquiry_ref"'),
        "record.search_follow_ups.collected_at",
        "not a timestamp",
    )
    assert said(
        _line(text, 'collected_at = "created_at"'),
        "record.enquiries.collected_at",
        "without a zone",
    )
    # web_sessions declares its own zone: no complaint there
    assert not any("record.web_sessions" in x for x in lines)
    assert said(_line(text, "[event.letting]"), "event.letting", "no table 'letting'")
    assert said(
        _line(text, 'erasure = "delete"'),
        "record.enquiries.erasure",
        "foreign key quotes(enquiry_ref) -> enquiries(enquiry_ref)",
    )


def test_map_check_names_a_database_it_cannot_read(tmp_path: Path) -> None:
    code, _, err = _run("map", "check", str(CRM_MAPPING), "--store", "nosuch://x")
    assert code == 2 and "nosuch" in err


def test_map_init_drafts_a_mapping_for_a_person_to_finish(host: str, tmp_path: Path) -> None:
    code, out, _ = _run("map", "init", "--store", host)
    assert code == 0
    draft = tomllib.loads(out)  # valid TOML as it stands
    assert draft["subjects"] == {
        "table": "customers",
        "id": "customer_id",
        "key": "customer_ref",
    }
    enquiries = draft["record"]["enquiries"]
    assert enquiries["source"] == "FILL_IN"  # never guessed
    assert enquiries["subject"] == {"via": "customer_id"}
    assert enquiries["categories"]["name"] == ["first_name", "last_name"]
    assert enquiries["categories"]["email"] == "email"
    assert draft["record"]["web_sessions"]["categories"]["ip_address"] == "ip_address"
    assert "timezone" not in draft["mapping"]  # naive columns: the zone is left blank
    assert '# timezone = "FILL_IN"' in out
    target = tmp_path / "draft.toml"
    assert _run("map", "init", "--store", host, "-o", str(target))[0] == 0
    code, _, err = _run("map", "init", "--store", host, "-o", str(target))
    assert code == 2 and "cannot write" in err


def test_scenarios_run_through_the_mapping(host: str) -> None:
    code, out, _ = _run(
        "scenarios", "run", "flexioffices", "--store", host, "--map", str(CRM_MAPPING)
    )
    assert code == 0, out[-2000:]
    assert " 0 failed" in out
    code, _, err = _run("scenarios", "run", "flexioffices", "--map", str(CRM_MAPPING))
    assert code == 2 and "--map needs --store" in err


def test_scenarios_refuse_a_host_holding_rows(host: str) -> None:
    engine = sa.create_engine(host)
    crm_module().generate(engine, 20)
    engine.dispose()
    code, _, err = _run(
        "scenarios", "run", "flexioffices", "--store", host, "--map", str(CRM_MAPPING)
    )
    assert code == 2 and "holds rows" in err


def test_sweep_request_and_explain_through_the_mapping(host: str) -> None:
    engine = sa.create_engine(host)
    crm_module().generate(engine, 400)
    engine.dispose()
    code, out, err = _run(
        "sweep",
        "--store",
        host,
        "--map",
        str(CRM_MAPPING),
        "--at",
        "2027-06-01T00:00:00Z",
        "--format",
        "json",
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["applied"] == 0 and plan["items"]
    due = len(plan["items"])
    code, out, err = _run(
        "sweep",
        "--store",
        host,
        "--map",
        str(CRM_MAPPING),
        "--at",
        "2027-06-01T00:00:00Z",
        "--apply",
    )
    assert code == 0, err
    assert f"applied: {due} records" in out
    code, out, err = _run(
        "request",
        "cust-00000003",
        "access",
        "--store",
        host,
        "--map",
        str(CRM_MAPPING),
        "--at",
        "2027-06-02T09:00:00Z",
        "--verified",
        "--format",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["outcome"] == "granted"
    code, out, err = _run(
        "explain",
        "may_email",
        "--subject",
        "cust-00000003",
        "--store",
        host,
        "--map",
        str(CRM_MAPPING),
        "--at",
        "2027-06-02T09:00:00Z",
    )
    assert code == 0, err
    assert "may_email" in out
