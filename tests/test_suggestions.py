"""'Did you mean': one helper (fairproc.errors.closest) suggests the closest known id, by
prefix and by edit distance, wherever a message names an unknown one (issue 16, item 8)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fairproc import Engine, Record, World, load_policy
from fairproc.conditions import Condition
from fairproc.conditions.vocabulary import vocabulary
from fairproc.errors import FairprocError, closest, did_you_mean
from fairproc.reactions import check_arrival
from fairproc.rights import plan_request
from fairproc.scenarios import load_scenario
from fairproc.storage import open_store
from fairproc.testing.harness import EngineBuilder

SRC = Path(__file__).resolve().parent.parent / "src" / "fairproc"
AT = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
FLEXI = load_policy("flexioffices")


@pytest.mark.parametrize(
    ("word", "known", "expected"),
    [
        ("marketing", FLEXI.purposes, "marketing_updates"),  # a prefix
        ("cloud", FLEXI.recipients, "cloud_it_provider"),  # a prefix, far by edits
        ("quick_quote_form_v2", FLEXI.sources, "quick_quote"),  # a known id, and more
        (
            "user.contact.emial",
            ["user", "user.contact", "user.contact.email"],
            "user.contact.email",
        ),
        ("emial", FLEXI.categories, "email"),  # two neighbours swapped: one edit
        ("web_visit", FLEXI.sources, "website_visit"),
        ("cloud_provider", FLEXI.recipients, "cloud_it_provider"),
        ("Marketing_Updates", FLEXI.purposes, "marketing_updates"),  # case
        ("acountant", FLEXI.recipients, "accountant"),
        ("telephone", FLEXI.recipients, "telephone_provider"),
        ("routing", ["route", "retention", "request"], "route"),  # alike: one stem
        ("zebra", FLEXI.purposes, None),  # nothing close
        ("ma", ["marketing_updates", "analytics"], None),  # too short to be a prefix of one
        ("x", [], None),
    ],
)
def test_closest(word: str, known: Any, expected: str | None) -> None:
    assert closest(word, known) == expected
    hint = did_you_mean(word, known)
    assert hint == (f"; did you mean {expected!r}?" if expected else "")


def test_of_two_names_a_word_begins_the_shortest_is_meant() -> None:
    assert closest("retention", ["retention_long", "retention_x", "other"]) == "retention_x"


def test_ties_go_to_the_longer_shared_start_then_sorted_order() -> None:
    assert closest("abcx", ["abdx", "abcy"]) == "abcy"
    assert closest("bbbb", ["bbba", "bbbc"]) == "bbba"


def _engine() -> Engine:
    rec = Record("q1", "ada", "quick_quote", AT, {"email": "ada@example.com"})
    return Engine(FLEXI, World([rec]))


def _scenario(tmp_path: Path, body: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[scenario]\ntitle = "t"\npolicy = "flexioffices"\nnow = 2026-11-23T10:00:00Z\n'
        '[[record]]\nid = "q1"\nsubject = "ada"\nsource = "quick_quote"\n'
        "collected_at = 2026-11-23T10:00:00Z\n" + body,
        encoding="utf-8",
    )
    load_scenario(path)


def _policy_file(tmp_path: Path, text: str) -> None:
    import shutil

    folder = tmp_path / "policy"
    shutil.copytree(Path(str(FLEXI.path)), folder)
    with (folder / "sharing.toml").open("a", encoding="utf-8") as f:
        f.write(text)
    load_policy(folder)


PLACES: dict[str, tuple[Callable[[Path], Any], str]] = {
    "engine purpose": (
        lambda _: _engine().may_process("q1", "marketing", AT),
        "'marketing_updates'",
    ),
    "engine recipient": (lambda _: _engine().may_share("q1", "cloud", AT), "'cloud_it_provider'"),
    "condition name": (
        lambda _: Condition.build("subject.suppres", vocabulary(FLEXI, "processing"), dt.UTC),
        "'subject.suppressed'",
    ),
    "condition value": (
        lambda _: Condition.build(
            "purpose == 'marketing'", vocabulary(FLEXI, "processing"), dt.UTC
        ),
        "'marketing_updates'",
    ),
    "condition function": (
        lambda _: Condition.build("in_office(at)", vocabulary(FLEXI, "routing"), dt.UTC),
        "'in_office_hours'",
    ),
    "shipped policy name": (lambda _: load_policy("flexi"), "'flexioffices'"),
    "policy section": (lambda p: _policy_file(p, "\n[recipien.x]\n"), "'recipient'"),
    "policy reference": (
        lambda p: _policy_file(
            p,
            '\n[recipient.extra]\ntitle = "x"\nclause = "x"\ncategories = ["emai"]\n'
            'location = "UK"\n',
        ),
        "'email'",
    ),
    "policy key": (
        lambda p: _policy_file(
            p, '\n[recipient.extra]\ntitle = "x"\nclause = "x"\ncategorie = ["email"]\n'
        ),
        "'categories'",
    ),
    "scenario id": (
        lambda p: _scenario(
            p, '[[expect]]\nask = "may_share"\nrecord = "q1"\nrecipient = "cloud"\n'
        ),
        "'cloud_it_provider'",
    ),
    "scenario key": (
        lambda p: _scenario(p, '[[expect]]\nask = "route"\nrecord = "q1"\noutcom = "x"\n'),
        "'outcome'",
    ),
    "reactive arrival": (
        lambda _: check_arrival(FLEXI, Record("q2", "ada", "quick", AT)),
        "'quick_quote'",
    ),
    "test harness": (
        lambda _: EngineBuilder(FLEXI).add_record("q1", "ada", "quick"),
        "'quick_quote'",
    ),
    "request right": (
        lambda _: plan_request(_engine(), "ada", "acces", AT, verified=True),
        "'access'",
    ),
    "objection purpose": (
        lambda _: plan_request(
            _engine(), "ada", "objection", AT, verified=True, purposes=["marketing"]
        ),
        "'marketing_updates'",
    ),
    "store scheme": (lambda _: open_store("sqlit:///x.db"), "'sqlite'"),
}


@pytest.mark.parametrize("place", list(PLACES))
def test_every_place_that_names_an_unknown_id_suggests_the_closest(
    place: str, tmp_path: Path
) -> None:
    ask, meant = PLACES[place]
    with pytest.raises(FairprocError) as info:
        ask(tmp_path)
    assert f"did you mean {meant}?" in str(info.value)


def test_one_helper_words_every_suggestion() -> None:
    """No module but fairproc.errors words 'did you mean' or asks difflib."""
    for path in SRC.rglob("*.py"):
        if path.name == "errors.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"did you mean|difflib", text), path.relative_to(SRC)
