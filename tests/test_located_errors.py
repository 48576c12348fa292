"""Bad input gives a located error, never a traceback (issue 17, finding 7)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fairproc import Engine, InputError, Record, load_policy
from fairproc.cli import main
from fairproc.errors import FairprocError
from fairproc.rights import request
from fairproc.storage import open_store
from fairproc.sweep import plan_sweep
from store_support import STORE_KINDS, opened_store

UTC = dt.UTC
ROOT = Path(__file__).resolve().parent.parent
AT = dt.datetime(2027, 1, 1, tzinfo=UTC)


def _run(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(main, list(args))
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, result.output, exception


@pytest.fixture
def eternal_policy(tmp_path: Path) -> Path:
    """The shipped policy with cookie data kept 8,000 years: lint passes it."""
    folder = tmp_path / "eternal"
    shutil.copytree(ROOT / "rules" / "flexioffices", folder)
    retention = folder / "retention.toml"
    retention.write_text(
        retention.read_text("utf-8").replace('keep = "P12M"', 'keep = "P8000Y"'), "utf-8"
    )
    return folder


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_period_past_year_9999_is_a_located_error(
    kind: str, tmp_path: Path, eternal_policy: Path
) -> None:
    with opened_store(kind, tmp_path) as store:
        store.put_records(Record("w1", "ada", "website_visit", AT, {}))  # type: ignore[attr-defined]
        engine = Engine(load_policy(str(eternal_policy)), store)
        with pytest.raises(InputError, match=r"P8000Y after 2027-01-01.*years 1 to 9999"):
            engine.retention("w1", AT)
        with pytest.raises(InputError, match=r"P8000Y after 2027-01-01.*years 1 to 9999"):
            plan_sweep(engine, AT)


def test_a_request_at_the_end_of_time_is_a_located_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/end.db"
    store = open_store(url)
    store.put_records(Record("q1", "ada", "quick_quote", AT, {"name": "Ada"}))  # type: ignore[attr-defined]
    store.close()
    code, out, exception = _run(
        "request", "ada", "access", "--store", url, "--at", "9999-12-31T23:59:59Z", "--verified"
    )
    assert exception is None and code == 2
    assert "P1M after 9999-12-31T23:59:59" in out


def test_toml_nested_too_deep_is_a_located_error(tmp_path: Path) -> None:
    scenario = tmp_path / "deep.toml"
    scenario.write_text("x = " + "[" * 500 + "]" * 500 + "\n", "utf-8")
    code, out, exception = _run("scenarios", "run", str(scenario))
    assert exception is None and code == 2 and "deep.toml" in out and "not valid TOML" in out
    policy = tmp_path / "policy"
    shutil.copytree(ROOT / "rules" / "flexioffices", policy)
    (policy / "deep.toml").write_text("x = " + "[" * 500 + "]" * 500 + "\n", "utf-8")
    with pytest.raises(FairprocError, match=r"deep\.toml.*not valid TOML"):
        load_policy(str(policy))


NAN_SCENARIO = """\
[scenario]
title = "a record holding NaN"
policy = "flexioffices"
now = 2026-11-24T12:00:00Z

[[record]]
id = "q1"
subject = "ada"
source = "quick_quote"
collected_at = 2026-11-20T10:00:00Z
data = { name = "Ada", office_size = {value} }

[[expect]]
ask = "route"
record = "q1"
outcome = "pass_to_providers"
"""


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("store", ["sqlite", "csv"])
def test_a_number_no_store_keeps_fails_that_file_only(
    tmp_path: Path, value: str, store: str
) -> None:
    bad = tmp_path / "scenarios" / "a-bad.toml"
    bad.parent.mkdir()
    bad.write_text(NAN_SCENARIO.replace("{value}", value), "utf-8")
    good = ROOT / "rules" / "flexioffices" / "scenarios" / "email-no-address.toml"
    shutil.copy(good, bad.parent / "b-good.toml")
    url = {"sqlite": f"sqlite:///{tmp_path}/s.db", "csv": f"csv://{tmp_path}/s-csv"}[store]
    code, out, exception = _run(
        "scenarios", "run", str(bad.parent), "--store", url, "--format", "json"
    )
    assert exception is None and code == 2, out
    assert "a-bad.toml" in out and "cannot be put in the store" in out
    assert "b-good.toml" in out  # the run went on to the next file


def test_an_unknown_source_is_named_by_its_record(flexi: object) -> None:
    store = open_store("memory://")
    store.put_records(  # type: ignore[attr-defined]
        Record("q1", "ada", "quick_quote", AT, {"name": "Ada"}),
        Record("fx7", "ada", "fax_machine", AT, {}),
    )
    engine = Engine(load_policy("flexioffices"), store)
    with pytest.raises(InputError, match=r"record 'fx7': unknown source 'fax_machine'"):
        request(engine, "ada", "access", AT, verified=True)
