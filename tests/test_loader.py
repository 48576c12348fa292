"""Loading policy folders: every problem reported at once, each with file, key path and line;
and clear errors, never bare tracebacks, for bad input to the engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fairproc import (
    Engine,
    FairprocError,
    InputError,
    Policy,
    PolicyError,
    Problem,
    Record,
    SuppressionEntry,
    World,
    load_policy,
)
from helpers import MINIMAL_POLICY, WorldBuilder, london, write_policy

# A small valid policy; tests break one piece of it at a time.
DATA = """
[category.email]
title = "Email"
clause = "your email address"

[category.name]
title = "Name"
clause = "your name"

[source.signup]
title = "Newsletter sign-up"
categories = ["email", "name"]
clause = "when you sign up to our newsletter"
"""

PURPOSES = """
[purpose.news]
title = "Send the newsletter"
clause = "we will send you our newsletter"
[[purpose.news.bases]]
basis = "consent"
sources = ["signup"]
clause = "you ask us to"
"""

RETENTION = """
[[retention]]
id = "retention.signup"
sources = ["signup"]
from = "record.collected_at"
keep = "P2Y"
clause = "we keep sign-ups for two years"
"""

VALID = {"data.toml": DATA, "purposes.toml": PURPOSES, "retention.toml": RETENTION}


def load_broken(folder: Path, files: dict[str, str]) -> PolicyError:
    write_policy(folder, {**VALID, **files})
    with pytest.raises(PolicyError) as info:
        load_policy(folder)
    return info.value


def line_of(path: Path, needle: str, nth: int = 0) -> int:
    """The 1-based line of the ``nth`` line of ``path`` containing ``needle``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[nth]


def find(error: PolicyError, file: str, path: tuple[str | int, ...]) -> Problem:
    for problem in error.problems:
        if problem.file and Path(problem.file).name == file and problem.path == path:
            return problem
    raise AssertionError(f"no problem at {file} {path} in:\n{error}")


def test_the_valid_base_policy_loads(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, VALID))
    assert set(policy.purposes) == {"news"}
    assert policy.id == "tiny"


# --- many problems, one error -----------------------------------------------------------------

MANY_POLICY = """
[policy]
id = "broken"
title = 5
timezone = "Europe/London"
colour = "blue"

[controller]
name = "Broken Ltd"
clause = "We are Broken Ltd."
"""

MANY_DATA = """
[category.email]
title = "Email"
clause = "your email address"

[source.signup]
title = "Sign-up"
categories = ["email", "emial"]
clause = "when you sign up"
"""

MANY_PURPOSES = """
[purpose.news]
title = "News"
clause = "news"
[[purpose.news.bases]]
basis = "legitimate_interest"
sources = ["signup"]
clause = "we think so"

[purpose.promo]
title = "Promotions"
clause = "promotions"
[[purpose.promo.bases]]
basis = "consent"
sources = ["singup"]
clause = "you agreed"

[purpose.unparsable]
title = "Unparsable"
clause = "unparsable"
[[purpose.unparsable.bases]]
basis = "consent"
sources = ["signup"]
clause = "you agreed"
when = "record.source == 'signup' and"

[purpose.mistyped]
title = "Mistyped"
clause = "mistyped"
[[purpose.mistyped.bases]]
basis = "consent"
sources = ["signup"]
clause = "you agreed"
when = "subjekt.suppressed"

[purpose.unclaused]
title = "Without a clause"
[[purpose.unclaused.bases]]
basis = "consent"
sources = ["signup"]
clause = "you agreed"
"""

MANY_MORE = """
[category.email]
title = "Email, again"
clause = "your email address"

[[retention]]
id = "retention.signup"
sources = ["signup"]
from = "record.collected_at"
keep = "P10X"
clause = "ten what?"

[[retention]]
id = "retention.unclaused"
sources = ["signup"]
from = "record.collected_at"
keep = "P1Y"
"""

MANY_BAD_TOML = """
[event.visit]
title = "Visit"
clause = "a visit"
effects = ["interaction"
title = "again"
"""


@pytest.fixture
def many(tmp_path: Path) -> tuple[Path, PolicyError]:
    files = {
        "policy.toml": MANY_POLICY,
        "data.toml": MANY_DATA,
        "purposes.toml": MANY_PURPOSES,
        "more.toml": MANY_MORE,
        "events.toml": MANY_BAD_TOML,
    }
    write_policy(tmp_path, files, minimal=False)
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    return tmp_path, info.value


@pytest.mark.parametrize(
    ("file", "path", "needle", "message"),
    [
        ("policy.toml", ("policy", "title"), "title = 5", "expected a string, got int 5"),
        ("policy.toml", ("policy", "colour"), "colour", "unknown key 'colour'"),
        (
            "data.toml",
            ("source", "signup", "categories", 1),
            "categories",
            "unknown category 'emial'; did you mean 'email'?",
        ),
        (
            "purposes.toml",
            ("purpose", "news", "bases", 0, "basis"),
            'basis = "legitimate_interest"',
            "unknown lawful basis 'legitimate_interest'; did you mean 'legitimate_interests'?",
        ),
        (
            "purposes.toml",
            ("purpose", "promo", "bases", 0, "sources", 0),
            'sources = ["singup"]',
            "unknown source 'singup'; did you mean 'signup'?",
        ),
        (
            "purposes.toml",
            ("purpose", "unparsable", "bases", 0, "when"),
            "when = \"record.source == 'signup' and\"",
            "is not a valid expression",
        ),
        (
            "purposes.toml",
            ("purpose", "mistyped", "bases", 0, "when"),
            'when = "subjekt.suppressed"',
            "unknown name 'subjekt.suppressed'; did you mean 'subject.suppressed'?",
        ),
        (
            "purposes.toml",
            ("purpose", "unclaused", "clause"),
            "[purpose.unclaused]",
            "every rule needs clause",
        ),
        (
            "more.toml",
            ("category", "email"),
            "[category.email]",
            "duplicate category id 'email' (first given in",
        ),
        ("more.toml", ("retention", 0, "keep"), 'keep = "P10X"', "expected an ISO 8601 period"),
        (
            "more.toml",
            ("retention", 1, "clause"),
            'id = "retention.unclaused"',
            "every rule needs clause",
        ),
    ],
)
def test_many_problems_are_all_reported_with_file_path_and_line(
    many: tuple[Path, PolicyError],
    file: str,
    path: tuple[str | int, ...],
    needle: str,
    message: str,
) -> None:
    folder, error = many
    problem = find(error, file, path)
    assert message in problem.message
    if file == "more.toml" and path[-1] == "clause":  # a missing key: the table's own line
        assert problem.line == line_of(folder / file, "[[retention]]", 1)
    else:
        assert problem.line == line_of(folder / file, needle)
    # and the error's text carries all three
    assert f"{folder / file}:{problem.line}: " in str(error)


def test_many_problems_come_in_one_error_including_bad_toml(
    many: tuple[Path, PolicyError],
) -> None:
    folder, error = many
    assert len(error.problems) == 12
    assert str(error).startswith("12 problems in policy:")
    (toml,) = [p for p in error.problems if p.file and p.file.endswith("events.toml")]
    assert "is not valid TOML" in toml.message
    assert toml.line == line_of(folder / "events.toml", 'title = "again"')
    assert all(p.file is not None and p.line is not None for p in error.problems)


# --- one problem at a time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[category.email\ntitle = "x"\n', "[category.email"),
        ('[category.email]\ntitle = "x"\ntitle = "y"\n', 'title = "y"'),
        ('[category.email]\ntitle = "x\nclause = "y"\n', 'title = "x'),
        ('[category.email]\ntitle = "x"\nclause = \n', "clause ="),
        ('[category.email]\ntitle = "x"\n\n\nclause = """never closed\n', "never closed"),
    ],
)
def test_bad_toml_names_its_line(tmp_path: Path, text: str, needle: str) -> None:
    error = load_broken(tmp_path, {"broken.toml": text})
    (problem,) = error.problems
    assert problem.file == str(tmp_path / "broken.toml")
    assert problem.message.startswith("is not valid TOML")
    assert problem.line == line_of(tmp_path / "broken.toml", needle)


def test_unknown_section_suggests_one(tmp_path: Path) -> None:
    error = load_broken(tmp_path, {"x.toml": '[purpsoe.x]\ntitle = "x"\n'})
    (problem,) = error.problems
    assert problem.path == ("purpsoe",)
    assert "unknown section 'purpsoe'; did you mean 'purpose'?" in problem.message
    assert problem.line == 1


@pytest.mark.parametrize(
    ("files", "file", "path", "needle", "message"),
    [
        (
            {"data.toml": DATA.replace('title = "Email"', 'title = "Email"\ncolor = "red"')},
            "data.toml",
            ("category", "email", "color"),
            "color",
            "unknown key 'color' (expected one of: about_others, clause, dpv, id, note, title)",
        ),
        (
            {
                "purposes.toml": PURPOSES.replace(
                    'basis = "consent"', 'basis = "consent"\nwhen_ = 1'
                )
            },
            "purposes.toml",
            ("purpose", "news", "bases", 0, "when_"),
            "when_",
            "unknown key 'when_'",
        ),
        (
            {"retention.toml": RETENTION.replace('keep = "P2Y"', 'keep = "P2Y"\nuntil = "x"')},
            "retention.toml",
            ("retention", 0, "until"),
            "until",
            "unknown key 'until'",
        ),
    ],
)
def test_unknown_keys_name_the_key_and_its_line(
    tmp_path: Path,
    files: dict[str, str],
    file: str,
    path: tuple[str | int, ...],
    needle: str,
    message: str,
) -> None:
    error = load_broken(tmp_path, files)
    problem = find(error, file, path)
    assert message in problem.message
    assert problem.line == line_of(tmp_path / file, needle)


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ('title = "Email"', "title = 5", ("category", "email", "title"), "expected a string"),
        ('title = "Email"', "title = 5.5", ("category", "email", "title"), "got float 5.5"),
        ('title = "Email"', "title = true", ("category", "email", "title"), "got bool"),
        (
            'title = "Email"',
            'title = "Email"\nabout_others = "yes"',
            ("category", "email", "about_others"),
            "expected true or false",
        ),
        (
            'categories = ["email", "name"]',
            'categories = "email"',
            ("source", "signup", "categories"),
            "expected a list of ids",
        ),
        (
            'categories = ["email", "name"]',
            'categories = ["email", 7]',
            ("source", "signup", "categories"),
            "expected a list of ids (strings), got 7",
        ),
        (
            'clause = "your name"',
            "clause = 42",
            ("category", "name", "clause"),
            "expected a string, got int 42",
        ),
    ],
)
def test_wrong_types_are_named(
    tmp_path: Path, old: str, new: str, path: tuple[str | int, ...], message: str
) -> None:
    assert old in DATA
    error = load_broken(tmp_path, {"data.toml": DATA.replace(old, new, 1)})
    problem = find(error, "data.toml", path)
    assert message in problem.message
    assert problem.line == line_of(tmp_path / "data.toml", new.splitlines()[-1])


@pytest.mark.parametrize(
    "period", ["10 years", "P", "PT", "P1.5Y", "1Y", "P-1Y", "p1y", "P1H", "PT1D"]
)
def test_bad_periods(tmp_path: Path, period: str) -> None:
    error = load_broken(tmp_path, {"retention.toml": RETENTION.replace("P2Y", period)})
    problem = find(error, "retention.toml", ("retention", 0, "keep"))
    assert "expected an ISO 8601 period such as P10Y" in problem.message
    assert repr(period) in problem.message
    assert problem.line == line_of(tmp_path / "retention.toml", "keep =")


def test_a_period_given_as_a_number(tmp_path: Path) -> None:
    error = load_broken(tmp_path, {"retention.toml": RETENTION.replace('"P2Y"', "2")})
    assert (
        "expected an ISO 8601 period"
        in find(error, "retention.toml", ("retention", 0, "keep")).message
    )


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("record.source ==", "is not a valid expression"),
        ("lambda: True", "Lambda is not allowed"),
        ("__import__('os')", "unknown function '__import__'"),
        ("record.source == 'signpu'", "unknown source 'signpu'; did you mean 'signup'?"),
        ("at", "must give a bool"),
        ("record.collected_at < 'yesterday'", "cannot compare instant with string"),
    ],
)
def test_bad_conditions_name_the_key(tmp_path: Path, condition: str, message: str) -> None:
    text = PURPOSES + f'when = "{condition}"\n'
    error = load_broken(tmp_path, {"purposes.toml": text})
    problem = find(error, "purposes.toml", ("purpose", "news", "bases", 0, "when"))
    assert message in problem.message
    assert problem.line == line_of(tmp_path / "purposes.toml", "when =")


def test_a_rule_without_clause(tmp_path: Path) -> None:
    error = load_broken(
        tmp_path, {"purposes.toml": PURPOSES.replace('clause = "you ask us to"\n', "")}
    )
    problem = find(error, "purposes.toml", ("purpose", "news", "bases", 0, "clause"))
    assert "every rule needs clause: the words of the notice it encodes" in problem.message
    assert problem.line == line_of(tmp_path / "purposes.toml", "[[purpose.news.bases]]")


def test_an_empty_clause(tmp_path: Path) -> None:
    error = load_broken(
        tmp_path, {"retention.toml": RETENTION.replace("we keep sign-ups for two years", " ")}
    )
    assert "rule 'retention.signup': clause is empty" in str(error)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    error = load_broken(
        tmp_path,
        {
            "zz_more.toml": PURPOSES.replace("Send the newsletter", "Again")
            + RETENTION.replace("two years", "again"),
        },
    )
    purpose = find(error, "zz_more.toml", ("purpose", "news"))
    assert "duplicate purpose id 'news' (first given in" in purpose.message
    assert "purposes.toml" in purpose.message
    assert purpose.line == line_of(tmp_path / "zz_more.toml", "[purpose.news]")
    rule = find(error, "zz_more.toml", ("retention", 0, "id"))
    assert "duplicate rule id 'retention.signup'" in rule.message
    assert rule.line == line_of(tmp_path / "zz_more.toml", 'id = "retention.signup"')


def test_an_id_key_inside_a_keyed_table(tmp_path: Path) -> None:
    error = load_broken(
        tmp_path, {"data.toml": DATA.replace('title = "Name"', 'id = "name"\ntitle = "Name"')}
    )
    assert (
        "the id is the table's name" in find(error, "data.toml", ("category", "name", "id")).message
    )


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"policy.toml": '[controller]\nname = "x"\n'}, "no [policy] table"),
        (
            {"policy.toml": MINIMAL_POLICY.replace("Europe/London", "Europe/Londn")},
            "expected an IANA time zone such as Europe/London, got 'Europe/Londn'",
        ),
        (
            {"policy.toml": '[policy]\nid = "x"\ntitle = "x"\ntimezone = "UTC"\n'},
            "no [controller] table",
        ),
        (
            {"purposes.toml": '[purpose.news]\ntitle = "x"\nclause = "x"\nbases = []\n'},
            "a purpose needs at least one [[purpose.<id>.bases]] entry",
        ),
        (
            {"retention.toml": RETENTION.replace('keep = "P2Y"', 'keep = "P2Y"\nreview = true')},
            "exactly one of keep",
        ),
        (
            {"retention.toml": RETENTION.replace('from = "record.collected_at"\n', "")},
            "keep needs from",
        ),
    ],
)
def test_structural_problems(tmp_path: Path, files: dict[str, str], message: str) -> None:
    error = load_broken(tmp_path, files)
    assert message in str(error)


# --- finding a policy ---------------------------------------------------------------------------


def test_a_missing_shipped_name_suggests_the_nearest(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy("flexioffice")
    message = str(info.value)
    assert "no policy named 'flexioffice'; did you mean 'flexioffices'?" in message
    assert "shipped: " in message and "flexioffices" in message


def test_a_missing_name_lists_the_shipped_policies() -> None:
    with pytest.raises(PolicyError, match=r"no policy named 'gym' \(shipped: .*flexioffices"):
        load_policy("gym")


def test_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "nowhere")
    (problem,) = info.value.problems
    assert problem.message == "no such policy folder"
    assert problem.file == str(tmp_path / "nowhere")


def test_a_file_is_not_a_policy_folder(tmp_path: Path) -> None:
    file = tmp_path / "policy.toml"
    file.write_text("")
    with pytest.raises(PolicyError, match="expected a folder of TOML rule files"):
        load_policy(file)


def test_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"no \*\.toml rule files"):
        load_policy(tmp_path)


def test_reloading_an_edited_folder_sees_the_edit(tmp_path: Path) -> None:
    folder = write_policy(tmp_path, VALID)
    assert set(load_policy(folder).purposes) == {"news"}
    renamed = PURPOSES.replace("purpose.news", "purpose.post")
    (folder / "purposes.toml").write_text(renamed)
    assert set(load_policy(folder).purposes) == {"post"}


def test_policy_error_is_a_fairproc_error() -> None:
    assert issubclass(PolicyError, FairprocError)
    assert issubclass(InputError, FairprocError)


# --- bad input to the engine ------------------------------------------------------------------

NAIVE = dt.datetime(2026, 3, 4, 10)
AWARE = london(2026, 3, 4, 10)


@pytest.fixture
def engine(world: WorldBuilder) -> Engine:
    world.record("quick_quote", london(2026, 3, 2, 10), id="q1")
    return world.engine()


QUESTIONS: dict[str, Callable[[Engine, Any], Any]] = {
    "may_process": lambda e, at: e.may_process("q1", "marketing_updates", at),
    "route": lambda e, at: e.route("q1", at),
    "may_share": lambda e, at: e.may_share("q1", "office_provider", at),
    "transfer": lambda e, at: e.transfer("cloud_it_provider", at),
    "may_email": lambda e, at: e.may_email("ada", at),
    "retention": lambda e, at: e.retention("q1", at),
}


@pytest.mark.parametrize("question", QUESTIONS)
def test_a_naive_datetime_is_refused_clearly(engine: Engine, question: str) -> None:
    with pytest.raises(InputError) as info:
        QUESTIONS[question](engine, NAIVE)
    message = str(info.value)
    assert "naive datetime 2026-03-04T10:00:00 has no time zone" in message
    assert "does not guess" in message
    assert QUESTIONS[question](engine, AWARE).outcome  # the same question, aware, is answered


@pytest.mark.parametrize("question", QUESTIONS)
@pytest.mark.parametrize("value", ["2026-03-04T10:00:00Z", dt.date(2026, 3, 4), 1772618400, None])
def test_what_is_not_a_datetime_is_refused_clearly(
    engine: Engine, question: str, value: Any
) -> None:
    with pytest.raises(InputError, match="expected a timezone-aware datetime"):
        QUESTIONS[question](engine, value)


def test_a_record_with_a_naive_collection_time_is_refused(world: WorldBuilder) -> None:
    rec = world.record("quick_quote", NAIVE, id="n1")
    engine = world.engine()
    for ask in (
        lambda: engine.may_process("n1", "office_search", AWARE),
        lambda: engine.route(rec, AWARE),
        lambda: engine.retention("n1", AWARE),
        lambda: engine.may_email("ada", AWARE),
    ):
        with pytest.raises(InputError, match=r"record 'n1': collected_at: naive datetime"):
            ask()


def test_a_naive_event_is_refused(world: WorldBuilder) -> None:
    world.record("quick_quote", AWARE, id="q1")
    world.event("website_visit", NAIVE)
    with pytest.raises(InputError, match=r"event 'website_visit' of subject 'ada': at: naive"):
        world.engine().may_process("q1", "office_search", AWARE)


def test_a_naive_suppression_entry_is_refused(flexi: Policy) -> None:
    rec = Record("q1", "ada", "quick_quote", AWARE, {"email": "ada@example.com"})
    world = World([rec], [], [SuppressionEntry("ada@example.com", NAIVE, "unsubscribed")])
    with pytest.raises(InputError, match=r"suppression entry 'ada@example\.com': at: naive"):
        Engine(flexi, world).may_email("ada", AWARE)


@pytest.mark.parametrize(
    ("ask", "message"),
    [
        (
            lambda e: e.may_process("q1", "marketing_update", AWARE),
            "unknown purpose 'marketing_update'; did you mean 'marketing_updates'?",
        ),
        (
            lambda e: e.may_process("q1", "newsletter", AWARE),
            "unknown purpose 'newsletter'",
        ),
        (
            lambda e: e.may_share("q1", "acountant", AWARE),
            "unknown recipient 'acountant'; did you mean 'accountant'?",
        ),
        (
            lambda e: e.transfer("cloud_provider", AWARE),
            "unknown recipient 'cloud_provider'; did you mean 'cloud_it_provider'?",
        ),
        (lambda e: e.may_process("q9", "office_search", AWARE), "no record with id 'q9'"),
        (lambda e: e.retention("q9", AWARE), "no record with id 'q9'"),
        (
            lambda e: e.route(Record("x", "ada", "quik_quote", AWARE), AWARE),
            "unknown source 'quik_quote'; did you mean 'quick_quote'?",
        ),
    ],
)
def test_unknown_ids_are_refused_with_a_suggestion(
    engine: Engine, ask: Callable[[Engine], Any], message: str
) -> None:
    with pytest.raises(InputError) as info:
        ask(engine)
    assert message in str(info.value)
    assert "(known: " in str(info.value) or "no record" in str(info.value)


def test_a_stored_record_from_an_unknown_source_is_refused(world: WorldBuilder) -> None:
    world.records.append(Record("w1", "ada", "web_visit", AWARE, {}))
    with pytest.raises(
        InputError, match="unknown source 'web_visit'; did you mean 'website_visit'"
    ):
        world.engine().retention("w1", AWARE)


def test_record_ids_given_twice_are_refused() -> None:
    rec = Record("r1", "ada", "quick_quote", AWARE)
    with pytest.raises(InputError, match="record id 'r1' is given twice"):
        World([rec, rec])


def test_may_email_needs_a_marketing_purpose_in_the_policy(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, VALID))
    with pytest.raises(InputError, match="names no marketing_purpose"):
        Engine(policy).may_email("ada", AWARE)


def test_an_empty_store_still_answers(flexi: Policy) -> None:
    engine = Engine(flexi)
    assert engine.may_email("nobody", AWARE).reasons == ("no_email",)
    assert engine.transfer("court", AWARE).outcome == "allowed"
    with pytest.raises(InputError):
        engine.may_process("r1", "office_search", AWARE)


def test_empty_ids_are_input_errors(engine: Engine) -> None:
    for ask in (
        lambda: engine.may_process("q1", "", AWARE),
        lambda: engine.may_share("q1", "", AWARE),
        lambda: engine.may_process("", "office_search", AWARE),
    ):
        with pytest.raises(InputError):
            ask()


def test_a_policy_prints_short() -> None:
    """print(policy) names the policy and counts its parts, not every attrs field."""
    policy = load_policy("flexioffices")
    text = str(policy)
    assert text == repr(policy)
    assert text.startswith("<Policy flexioffices 1.0 'Flexioffices: Fair Processing Notice")
    assert f"{len(policy.purposes)} purposes" in text
    assert f"{len(policy.rule_index())} rules" in text
    assert len(text) < 200 and "\n" not in text
