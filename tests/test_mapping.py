"""The mapping file: the example host's mapping loads as written, every class of mistake gives
a located error (file, line, key path, what was expected), and no mutated mapping makes the
loader raise anything but :class:`MappingError`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairproc import load_policy
from fairproc.mapping import MappingError, Mask, load_mapping, parse_mapping

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "crm" / "mapping.toml"
POLICY = load_policy("flexioffices")
TEXT = EXAMPLE.read_text(encoding="utf-8")


def test_the_example_mapping_loads_as_written() -> None:
    m = load_mapping(EXAMPLE, POLICY)
    assert m.policy == "flexioffices" and m.timezone == "UTC" and m.prefix == "fairproc_"
    assert m.subjects is not None and (m.subjects.table, m.subjects.id, m.subjects.key) == (
        "customers",
        "customer_id",
        "customer_ref",
    )
    enquiries = m.records["enquiries"]
    assert enquiries.source.column == "channel"
    assert enquiries.source.values["qq"] == "quick_quote"
    assert enquiries.source.stored("live_chat") == "chat"
    assert enquiries.categories["name"] == ("first_name", "last_name")
    assert enquiries.subject.via == "customer_id"
    assert m.table_for_source("multiquote") is enquiries
    assert m.zone_of(m.records["web_sessions"]) == "Europe/London"
    assert m.zone_of(enquiries) == "UTC"
    calls = m.records["calls"]
    assert calls.erasure == "mask"
    assert calls.mask["phone_number"] == Mask("hash")
    assert calls.mask["customer_id"] == Mask("null")
    assert m.table_for_kind("office_let") is m.events["lettings"]
    assert m.events["newsletter_unsubscribes"].kind.fixed == "unsubscribed"
    # each source and event kind the policy knows is in the policy
    for table in m.records.values():
        assert set(table.source.names()) <= set(POLICY.sources)
        assert set(table.categories) <= set(POLICY.categories)


def _replace(old: str, new: str) -> str:
    assert old in TEXT, old
    return TEXT.replace(old, new, 1)


def _line(text: str, needle: str) -> int:
    """The line holding ``needle``; ``"header >> needle"``: the first after ``header``."""
    after, _, needle = needle.rpartition(" >> ")
    lines = list(enumerate(text.splitlines(), 1))
    start = next(i for i, line in lines if after in line) if after else 0
    return next(i for i, line in lines if i >= start and needle in line)


# (what is wrong, the mapping text, the key path reported, words the message holds, the text
# on the reported line)
BAD = [
    (
        "unknown key",
        _replace('collected_at = "created_at"', 'collected = "created_at"'),
        "record.enquiries.collected",
        "did you mean 'collected_at'",
        'collected = "created_at"',
    ),
    (
        "missing id",
        _replace('id = "download_ref"\n', ""),
        "record.handbook_downloads.id",
        "required key is missing",
        "[record.handbook_downloads]",
    ),
    (
        "unknown zone",
        _replace('timezone = "Europe/London"', 'timezone = "Europe/Londn"'),
        "record.web_sessions.timezone",
        "unknown time zone 'Europe/Londn'",
        'timezone = "Europe/Londn"',
    ),
    (
        "unknown source",
        _replace('source = "handbook_download"', 'source = "handbook"'),
        "record.handbook_downloads.source",
        "unknown source 'handbook'; did you mean 'handbook_download'",
        'source = "handbook"',
    ),
    (
        "unknown source in a value map",
        _replace('mq = "multiquote"', 'mq = "multi_quote"'),
        "record.enquiries.source",
        "unknown source 'multi_quote'",
        "source = { column",
    ),
    (
        "unknown category",
        _replace('business_type = "business_type"', 'business = "business_type"'),
        "record.search_follow_ups.categories.business",
        "unknown category 'business'",
        'business = "business_type"',
    ),
    (
        "unknown event kind",
        _replace('kind = "office_let"', 'kind = "office_lets"'),
        "event.lettings.kind",
        "unknown event kind 'office_lets'",
        'kind = "office_lets"',
    ),
    (
        "one source in two tables",
        _replace('source = "phone_call"', 'source = "handbook_download"'),
        "record.calls.source",
        "mapped to two tables",
        '[record.calls] >> source = "handbook_download"',
    ),
    (
        "a mask that leaves the subject",
        _replace('customer_id = "null"\n', ""),
        "record.calls.mask",
        "mask the subject column 'customer_id'",
        "[record.calls.mask]",
    ),
    (
        "an unknown mask",
        _replace('phone_number = "hash"', 'phone_number = "hashed"'),
        "record.calls.mask.phone_number",
        "did you mean 'hash'",
        'phone_number = "hashed"',
    ),
    (
        "an unknown erasure",
        _replace('erasure = "delete"', 'erasure = "remove"'),
        "record.enquiries.erasure",
        "expected 'delete' or 'mask'",
        'erasure = "remove"',
    ),
    (
        "a join with no subjects table",
        re.sub(r"\[subjects\]\n(.*\n){3}", "", TEXT),
        "record.enquiries.subject",
        "needs a [subjects] table",
        "subject = { via",
    ),
    (
        "a category over a column twice",
        _replace('name = ["first_name", "last_name"]', 'name = ["first_name", "first_name"]'),
        "record.enquiries.categories.name",
        "names a column twice",
        'name = ["first_name", "first_name"]',
    ),
    (
        "a column holding two categories",
        _replace('company_name = "company"', 'company_name = "email"'),
        "record.enquiries.categories",
        "column 'email' holds more than one category",
        "[record.enquiries.categories]",
    ),
    (
        "a column name that is not a name",
        _replace('at = "let_on"', "at = 7"),
        "event.lettings.at",
        "expected a column or table name",
        "at = 7",
    ),
    (
        "a mapping for another policy",
        _replace('policy = "flexioffices"', 'policy = "acme"'),
        "mapping.policy",
        "not 'flexioffices'",
        'policy = "acme"',
    ),
]


@pytest.mark.parametrize(("what", "text", "path", "words", "on_line"), BAD, ids=[b[0] for b in BAD])
def test_every_bad_mapping_gives_a_located_error(
    what: str, text: str, path: str, words: str, on_line: str
) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, POLICY, file="crm.toml")
    problems = [p for p in caught.value.problems if words in p.message]
    assert problems, (what, str(caught.value))
    p = problems[0]
    assert p.file == "crm.toml"
    assert ".".join(str(x) for x in p.path) == path, str(p)
    assert p.line == _line(text, on_line), str(p)
    assert f"crm.toml:{p.line}: {path}: " in str(p)


def test_invalid_toml_and_unreadable_files_are_located(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"crm.toml:3: is not valid TOML"):
        parse_mapping("[mapping]\npolicy = 'x'\nbroken = \n", file="crm.toml")
    with pytest.raises(MappingError, match="cannot be read"):
        load_mapping(tmp_path / "absent.toml")


def test_every_problem_is_reported_together() -> None:
    text = _replace('kind = "office_let"', 'kind = "office_lets"').replace(
        'source = "phone_call"', 'source = "phone"'
    )
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, POLICY, file="crm.toml")
    messages = " ".join(p.message for p in caught.value.problems)
    assert "office_lets" in messages and "'phone'" in messages


def test_without_a_policy_names_are_not_checked() -> None:
    text = _replace('source = "phone_call"', 'source = "phone"')
    assert parse_mapping(text).records["calls"].source.fixed == "phone"


# --- mutated mappings never give a traceback -------------------------------------------------

DOC = tomllib.loads(TEXT)
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.text(max_size=12),
    st.sampled_from(["null", "hash", "mask", "delete", "UTC", "Europe/London", "customer_id"]),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at] if at else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*at, i))
    return out


PATHS = _paths(DOC)


def _mutate(doc: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "rename" and isinstance(parent, dict):
        parent[f"{last}_x"] = parent.pop(last)
    else:
        parent[last] = value
    return doc


def _to_toml(value: Any, path: tuple[str, ...] = ()) -> str:
    """A small TOML writer (inline tables for nested values): enough for mutated mappings."""

    def inline(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(inline(x) for x in v if x is not None) + "]"
        if isinstance(v, dict):
            items = [f"{inline(str(k))} = {inline(x)}" for k, x in v.items() if x is not None]
            return "{ " + ", ".join(items) + " }"
        return '""'

    lines = []
    for key, v in value.items():
        if v is not None:
            lines.append(f"{inline(str(key))} = {inline(v)}")
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(PATHS),
    how=st.sampled_from(["delete", "rename", "replace"]),
    value=_VALUES,
)
def test_mutated_mappings_give_only_mapping_errors(path: Any, how: str, value: Any) -> None:
    text = _to_toml(_mutate(DOC, path, how, value))
    try:
        parse_mapping(text, POLICY, file="m.toml")
    except MappingError as error:
        for p in error.problems:
            assert p.file == "m.toml" and p.message
    # a mutation may leave a valid mapping: then it loads


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(0, len(TEXT)),
    length=st.integers(0, 40),
    insert=st.text(alphabet='[]{}"=.,\n #abc_0', max_size=10),
)
def test_mutated_text_gives_only_mapping_errors(cut: int, length: int, insert: str) -> None:
    text = TEXT[:cut] + insert + TEXT[cut + length :]
    try:
        parse_mapping(text, POLICY, file="m.toml")
    except MappingError as error:
        assert all(p.file == "m.toml" for p in error.problems)
