"""The condition language: parsing arbitrary text, the compiled closures against the reference
interpreter, the render/parse round trip, and the type checker's messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fairproc import Condition, Event, Period, Policy, PolicyError, Record, load_policy
from fairproc.conditions import (
    And,
    Call,
    Compare,
    ConditionError,
    Const,
    In,
    Kind,
    ListOf,
    Node,
    Not,
    Or,
    Present,
    Ref,
    Shift,
    Type,
    Vocabulary,
    check,
    compile_python,
    interpret,
    parse,
    render,
)
from fairproc.conditions.vocabulary import CONTEXTS, Ctx, vocabulary
from fairproc.world import SubjectHistory
from helpers import LONDON, london

POLICY: Policy = load_policy("flexioffices")
TZ = POLICY.tz
VOCABS: dict[str, Vocabulary] = {c: vocabulary(POLICY, c) for c in CONTEXTS}
FULL = VOCABS["processing"]  # record, purpose and basis: the widest record context
T = Type

# --- strategies: text --------------------------------------------------------------------------

TOKENS = [
    *FULL.names,
    *FULL.functions,
    "date('2020-07-16')",
    "time('09:00')",
    "date",
    "time",
    "'quick_quote'",
    "'cookies_accepted'",
    "'marketing_updates'",
    "'quik_quote'",
    "'email'",
    "P4Y",
    "PT48H",
    "P12M",
    "P1W",
    "P",
    "PT",
    "0",
    "1",
    "-1",
    "2.5",
    "1e400",
    "True",
    "false",
    "None",
    "and",
    "or",
    "not",
    "in",
    "not in",
    "is",
    "is not",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "**",
    "@",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    ":",
    "lambda",
    "lambda x: x",
    "if",
    "else",
    "for",
    "yield",
    "await",
    "__import__('os')",
    "eval",
    "exec",
    "open",
    "__class__",
    "__builtins__",
    "getattr",
    "record.source.lower()",
    "record.categories[0]",
    "x[1:2]",
    "'\\x00'",
    "'\\d'",
    "b'x'",
    "f'{at}'",
    "...",
    "1j",
    "\n",
    "#",
    ";",
    "\\",
]


@st.composite
def token_text(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14))
    separators = draw(st.lists(st.sampled_from([" ", "", "  ", "\t"]), min_size=len(tokens)))
    return "".join(t + s for t, s in zip(tokens, separators, strict=False))


ANY_TEXT = st.one_of(st.text(max_size=120), token_text())


# --- (a) arbitrary text is refused with a PolicyError, never anything else ---------------------


@settings(max_examples=300)
@given(ANY_TEXT)
def test_parse_arbitrary_text_raises_only_policy_errors(text: str) -> None:
    try:
        node = parse(text)
    except PolicyError as exc:
        assert isinstance(exc, ConditionError)
        assert exc.problems and "condition" in str(exc)
    else:
        assert render(node)  # whatever parses can be rendered


@settings(max_examples=300)
@given(ANY_TEXT, st.sampled_from(sorted(VOCABS)), st.sampled_from([Kind.BOOL, Kind.INSTANT]))
def test_build_arbitrary_text_raises_only_policy_errors(
    text: str, context: str, kind: Kind
) -> None:
    try:
        cond = Condition.build(text, VOCABS[context], TZ, kind)
    except PolicyError:
        return
    assert cond.type.kind is kind
    assert cond.compiled


@pytest.mark.parametrize("value", [None, 3, b"at", ["at"]])
def test_parse_refuses_what_is_not_text(value: Any) -> None:
    with pytest.raises(ConditionError, match="expected a string"):
        parse(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "(" * 200 + "at" + ")" * 200,
        "not " * 500 + "true",
        " and ".join(["true"] * 2000),
        "-" * 500 + "1",
        "at" + " + P1Y" * 100 + " > at",
    ],
)
def test_parse_refuses_huge_or_deep_text_cleanly(text: str) -> None:
    with pytest.raises(ConditionError):
        Condition.build(text, FULL, TZ)


# --- strategies: well-typed ASTs from the vocabulary -------------------------------------------

ENUM_VALUES = {k: sorted(v) for k, v in FULL.enums.items()}

INSTANTS = st.datetimes(
    min_value=dt.datetime(2015, 1, 1),
    max_value=dt.datetime(2040, 12, 31),
    timezones=st.sampled_from([dt.UTC, LONDON, dt.timezone(dt.timedelta(hours=5, minutes=30))]),
)
PERIODS = st.builds(
    Period,
    years=st.integers(0, 12),
    months=st.integers(0, 25),
    weeks=st.integers(0, 5),
    days=st.integers(0, 400),
    hours=st.integers(0, 72),
    minutes=st.integers(0, 90),
    seconds=st.integers(0, 90),
)
NUMBERS = st.one_of(
    st.integers(-10, 10), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
)
TIMES = st.times()
DATES = st.dates(dt.date(2015, 1, 1), dt.date(2040, 12, 31))


def _names(vocab: Vocabulary, kind: Kind, enum: str | None = None) -> list[str]:
    """Names of ``kind`` whose values come from the id space ``enum`` (None: free text)."""
    return sorted(n.name for n in vocab.names.values() if n.type == T(kind, enum))


def _const(kind: Kind, enum: str | None = None) -> st.SearchStrategy[Const]:
    if kind is Kind.STRING:
        values = st.sampled_from(ENUM_VALUES[enum]) if enum else st.text(max_size=8)
        return values.map(lambda v: Const(v, T(Kind.STRING)))
    strategy: st.SearchStrategy[Any] = {
        Kind.BOOL: st.booleans(),
        Kind.NUMBER: NUMBERS,
        Kind.TIME: TIMES,
        Kind.DATE: DATES,
        Kind.PERIOD: PERIODS,
    }[kind]
    return strategy.map(lambda v: Const(v, T(kind)))


# what comparisons compare; instants and event ids (often missing) the most
COMPARED = [Kind.INSTANT, Kind.INSTANT, Kind.STRING, Kind.STRING, Kind.TIME, Kind.DATE, Kind.NUMBER]
COMPARED += [Kind.BOOL]


OFTEN_MISSING = {"subject.office_let", "record.resolved_at", "subject.cookie_choice"}


class AstGen:
    """Well-typed condition trees over one vocabulary."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab

    def of(self, kind: Kind, depth: int, enum: str | None = None) -> st.SearchStrategy[Node]:
        return getattr(self, kind.value)(depth, enum)

    def refs(self, kind: Kind, enum: str | None = None) -> list[st.SearchStrategy[Node]]:
        names = _names(self.vocab, kind, enum)
        names += [n for n in names if n in OFTEN_MISSING]  # missing values: the hard cases
        return [st.sampled_from(names).map(Ref)] if names else []

    def instant(self, depth: int, enum: str | None = None) -> st.SearchStrategy[Node]:
        leaves = st.one_of(self.refs(Kind.INSTANT))
        if depth <= 0:
            return leaves
        shift = st.builds(
            Shift, st.sampled_from(["+", "-"]), self.instant(depth - 1), _const(Kind.PERIOD)
        )
        return st.one_of(leaves, shift)

    def _call(self, func: str, arg: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return arg.map(lambda a: Call(func, (a,)))

    def time(self, depth: int, enum: str | None = None) -> st.SearchStrategy[Node]:
        return st.one_of(_const(Kind.TIME), self._call("local_time", self.instant(depth - 1)))

    def date(self, depth: int, enum: str | None = None) -> st.SearchStrategy[Node]:
        return st.one_of(_const(Kind.DATE), self._call("local_date", self.instant(depth - 1)))

    def number(self, depth: int, enum: str | None = None) -> st.SearchStrategy[Node]:
        return st.one_of(_const(Kind.NUMBER), self._call("weekday", self.instant(depth - 1)))

    def string(self, depth: int, enum: str | None = None) -> st.SearchStrategy[Node]:
        return st.one_of(_const(Kind.STRING, enum), *self.refs(Kind.STRING, enum))

    def comparison(self, depth: int) -> st.SearchStrategy[Node]:
        @st.composite
        def build(draw: st.DrawFn) -> Node:
            kind = draw(st.sampled_from(COMPARED))
            enum = None
            if kind is Kind.STRING:
                enum = draw(st.sampled_from(["source", "purpose", "basis", "event", "event", None]))
            if kind is Kind.BOOL:
                op = draw(st.sampled_from(["==", "!="]))
            else:
                op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
            left = draw(self.of(kind, depth - 1, enum))
            right = draw(self.of(kind, depth - 1, enum))
            return Compare(op, left, right)

        return build()

    def membership(self, depth: int) -> st.SearchStrategy[Node]:
        @st.composite
        def build(draw: st.DrawFn) -> Node:
            negated = draw(st.booleans())
            if draw(st.booleans()) and "record.categories" in self.vocab.names:
                item = draw(st.one_of(_const(Kind.STRING, "category"), *self.refs(Kind.STRING)))
                return In(item, Ref("record.categories"), negated)
            kind = draw(st.sampled_from([Kind.STRING, Kind.STRING, Kind.NUMBER, Kind.DATE]))
            enum = None
            if kind is Kind.STRING:
                enum = draw(st.sampled_from(["source", "purpose", "event", "event"]))
            item = draw(self.of(kind, depth - 1, enum))
            items = draw(st.lists(_const(kind, enum), min_size=1, max_size=4))
            return In(item, ListOf(tuple(items)), negated)

        return build()

    def bool(self, depth: int, enum: str | None = None) -> st.SearchStrategy[Node]:
        leaves = st.one_of(_const(Kind.BOOL), *self.refs(Kind.BOOL))
        if depth <= 0:
            return leaves
        sub = self.bool(depth - 1)
        present_of = st.one_of(
            self.instant(depth - 1),
            *self.refs(Kind.STRING),
            self._call("local_time", self.instant(depth - 1)),
            self._call("in_office_hours", self.instant(depth - 1)),
        )
        branches = [
            self.comparison(depth),
            self.comparison(depth),
            self.membership(depth),
            st.lists(sub, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(sub, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
            sub.map(Not),
            present_of.map(Present),
            present_of.map(lambda n: Not(Present(n))),
            self._call("in_office_hours", self.instant(depth - 1)),
            self._call("objected", self.string(depth - 1, "purpose")),
            leaves,
        ]
        # sampled_from picks branches evenly; one_of leans on its first ones
        return st.sampled_from(branches).flatmap(lambda branch: branch)


GENS = {c: AstGen(v) for c, v in VOCABS.items()}
# contexts with a record: the engine always asks those with one
RECORD_CONTEXTS = sorted(c for c, parts in CONTEXTS.items() if "record" in parts)


ROOT_KINDS = (Kind.BOOL, Kind.BOOL, Kind.BOOL, Kind.INSTANT, Kind.NUMBER, Kind.TIME, Kind.DATE)


@st.composite
def typed_ast(draw: st.DrawFn, kinds: tuple[Kind, ...] = (Kind.BOOL,)) -> tuple[str, Kind, Node]:
    context = draw(st.sampled_from(RECORD_CONTEXTS))
    kind = draw(st.sampled_from(kinds))
    node = draw(GENS[context].of(kind, 3))
    return context, kind, node


# --- strategies: worlds and questions ----------------------------------------------------------

SOURCES = sorted(POLICY.sources)
EVENT_KINDS = sorted(POLICY.events)
PURPOSES = sorted(POLICY.purposes)


@st.composite
def questions(draw: st.DrawFn) -> Ctx:
    n_records = draw(st.integers(1, 3))
    records = []
    for i in range(n_records):
        source = draw(st.sampled_from(SOURCES))
        categories = draw(st.sets(st.sampled_from(sorted(POLICY.categories)), max_size=4))
        data = {c: f"v{c}" for c in categories}
        if draw(st.booleans()):
            data["email"] = draw(st.sampled_from(["ada@example.com", " ADA@example.com", ""]))
        records.append(Record(f"r{i}", "ada", source, draw(INSTANTS), data))
    events = [
        Event(
            "ada",
            draw(st.sampled_from(EVENT_KINDS)),
            draw(INSTANTS),
            record=draw(st.sampled_from([None, *[r.id for r in records]])),
            purpose=draw(st.sampled_from([None, *PURPOSES])),
        )
        for _ in range(draw(st.integers(0, 8)))
    ]
    history = SubjectHistory(POLICY, "ada", records, events)
    return Ctx(
        draw(INSTANTS),
        history,
        draw(st.sampled_from(records)),
        purpose=draw(st.sampled_from(PURPOSES)),
        basis=draw(st.sampled_from(["legitimate_interests", "contract", "consent"])),
        recipient=draw(st.sampled_from(sorted(POLICY.recipients))),
        court_order=draw(st.booleans()),
    )


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("value", fn())
    except Exception as exc:  # both backends must fail alike on out-of-range dates
        return ("error", type(exc).__name__)


# --- (b) the compiled closures agree with the interpreter --------------------------------------


@settings(max_examples=300)
@given(typed_ast(ROOT_KINDS), questions())
def test_compiled_closures_agree_with_the_interpreter(
    generated: tuple[str, Kind, Node], ctx: Ctx
) -> None:
    context, kind, node = generated
    vocab = VOCABS[context]
    assert check(node, vocab, expect=kind).kind is kind  # the generator makes well-typed trees
    interpreted = _outcome(lambda: interpret(node, ctx, vocab, TZ))
    compiled = _outcome(lambda: compile_python(node, vocab, TZ)(ctx))
    assume(interpreted[0] == "value")  # years past 9999 are not a question worth asking
    assert compiled == interpreted
    if kind is Kind.BOOL:
        assert type(compiled[1]) is bool


@st.composite
def comparisons(draw: st.DrawFn) -> tuple[str, Kind, Node]:
    context = draw(st.sampled_from(RECORD_CONTEXTS))
    gen = GENS[context]
    node = draw(st.one_of(gen.comparison(2), gen.membership(2)))
    return context, Kind.BOOL, node


@settings(max_examples=300)
@given(comparisons(), questions())
def test_compiled_comparisons_agree_with_the_interpreter(
    generated: tuple[str, Kind, Node], ctx: Ctx
) -> None:
    """Comparisons and membership tests alone: where missing values and orders matter most."""
    context, _, node = generated
    vocab = VOCABS[context]
    check(node, vocab)
    assert compile_python(node, vocab, TZ)(ctx) is interpret(node, ctx, vocab, TZ)


@settings(max_examples=100)
@given(typed_ast(), questions())
def test_built_conditions_agree_with_the_interpreter_on_their_text(
    generated: tuple[str, Kind, Node], ctx: Ctx
) -> None:
    context, _, node = generated
    vocab = VOCABS[context]
    cond = Condition.build(render(node), vocab, TZ)
    assert cond.node == node
    value = _outcome(lambda: interpret(node, ctx, vocab, TZ))
    assume(value[0] == "value")
    assert cond.evaluate(ctx) == value[1]
    # each fact an explanation shows is the value of the expression it names
    for name, fact in cond.read_facts(ctx).items():
        assert fact == interpret(parse(name), ctx, vocab, TZ), name


def test_missing_values_make_comparisons_false_in_both_backends() -> None:
    history = SubjectHistory(POLICY, "ada", [], [])
    rec = Record("r", "ada", "quick_quote", london(2026, 3, 2))
    ctx = Ctx(london(2026, 3, 4), history, rec)
    vocab = VOCABS["retention"]
    cases = {
        "subject.office_let < at": False,
        "subject.office_let != at": False,
        "subject.office_let is None": True,
        "subject.office_let + P10Y is None": True,
        "in_office_hours(subject.office_let)": False,
        "local_time(subject.office_let) is None": True,
        "subject.cookie_choice != 'cookies_accepted'": False,
        "subject.cookie_choice not in ['cookies_accepted']": False,
        "not (subject.office_let < at)": True,
    }
    for text, expected in cases.items():
        node = parse(text)
        assert interpret(node, ctx, vocab, TZ) is expected, text
        assert Condition.build(text, vocab, TZ).evaluate(ctx) is expected, text


# --- (c) render and parse round trip ----------------------------------------------------------


@settings(max_examples=200)
@given(typed_ast(ROOT_KINDS))
def test_render_then_parse_gives_the_same_tree(generated: tuple[str, Kind, Node]) -> None:
    _, _, node = generated
    assert parse(render(node)) == node


@settings(max_examples=300)
@given(token_text())
def test_any_parsed_text_round_trips(text: str) -> None:
    try:
        node = parse(text)
    except PolicyError:
        return
    assert parse(render(node)) == node


@pytest.mark.parametrize(
    "text",
    [
        "at < subject.last_interaction + P4Y",
        "record.source in ['quick_quote', 'multiquote'] and not subject.suppressed",
        "in_office_hours(record.collected_at)",
        "a < b < c",
        "(a and b) and c",
        "a and (b or not c)",
        "x is None",
        "not (x is None)",
        "x is not None",
        "x == -1",
        "x in [-1, 2.5, 3]",
        "x == 'it''s'",
        'x == "it\'s"',
        "local_date(at) >= date('2020-07-16')",
        "local_time(at) < time('17:30')",
        "(at - P1Y2M3DT4H5M6S) < at",
        "at + P0D == at",
        "x in ()",
        "x == 0x1f",
    ],
)
def test_round_trip_examples(text: str) -> None:
    node = parse(text)
    assert parse(render(node)) == node


def test_rendering_keeps_grouping() -> None:
    assert render(parse("a and (b or c)")) == "a and (b or c)"
    assert render(parse("(a and b) or c")) == "(a and b) or c"
    assert render(parse("x == -1")) == "x == (-1)"
    assert render(parse("x is None")) == "x is None"


def test_chained_comparisons_mean_and() -> None:
    assert parse("a < b <= c") == And(
        (Compare("<", Ref("a"), Ref("b")), Compare("<=", Ref("b"), Ref("c")))
    )


def test_numbers_must_be_finite() -> None:
    # 1e400 reads as infinity, which renders as a name: refused rather than changed
    for text in ("x == 1e400", "x == -1e400", "x in [1e999]"):
        with pytest.raises(ConditionError, match="finite"):
            parse(text)


def test_an_invalid_escape_is_refused_whatever_the_warning_filters() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConditionError, match="escape"):
            parse(r"record.id == '\d'")


# --- type errors with helpful messages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "context", "message"),
    [
        ("subject.supressed", "processing", "did you mean 'subject.suppressed'"),
        ("subject.last_interation < at", "processing", "did you mean 'subject.last_interaction'"),
        ("recrod.source == 'quick_quote'", "processing", "did you mean 'record.source'"),
        ("recipient == 'court'", "processing", "unknown name 'recipient'"),
        (
            "record.source == 'quik_quote'",
            "processing",
            "unknown source 'quik_quote'; did you mean 'quick_quote'",
        ),
        ("'quik_quote' == record.source", "processing", "did you mean 'quick_quote'"),
        (
            "record.source in ['quick_quote', 'quik_quote']",
            "processing",
            "unknown source 'quik_quote'",
        ),
        (
            "objected('marketing_update')",
            "processing",
            "unknown purpose 'marketing_update'; did you mean 'marketing_updates'",
        ),
        ("purpose == 'analytic'", "processing", "did you mean 'analytics'"),
        ("basis == 'legitimate_interest'", "processing", "did you mean 'legitimate_interests'"),
        ("recipient == 'acountant'", "sharing", "did you mean 'accountant'"),
        (
            "subject.cookie_choice == 'cookies_accept'",
            "processing",
            "did you mean 'cookies_accepted'",
        ),
        (
            "'emial' in record.categories",
            "processing",
            "unknown category 'emial'; did you mean 'email'",
        ),
        ("at < '2020-01-01'", "processing", "cannot compare instant with string"),
        ("record.collected_at == 5", "processing", "cannot compare instant with number"),
        ("local_date(at) < '2020-07-16'", "processing", "cannot compare date with string"),
        ("at == None", "processing", "is None"),
        ("None == subject.office_let", "processing", "is None"),
        ("subject.office_let is 5", "processing", "compare only with None"),
        ("at + 5 > at", "processing", "needs a period"),
        ("P4Y + at > at", "processing", "needs an instant on its left"),
        ("not at", "processing", "'not' takes a true/false operand"),
        ("at and true", "processing", "and/or takes true/false operands"),
        ("at", "processing", "must give a bool"),
        ("in_office_hours()", "routing", "takes 1 argument(s), got 0"),
        ("in_office_hours('09:00')", "routing", "expects a instant argument, got string"),
        ("teleport(at)", "routing", "unknown function 'teleport'"),
        ("in_ofice_hours(at)", "routing", "did you mean 'in_office_hours'"),
        ("record.categories < record.categories", "processing", "have no order"),
        ("'email' in record.source", "processing", "needs a list or a set"),
        ("record.source in []", "processing", "non-empty list"),
        ("record.source in [1, 2]", "processing", "is not a string"),
        ("[1] == [1]", "processing", "a list may only stand on the right of 'in'"),
        ("5 is None", "processing", "tests a name or call, not a literal"),
        ("date('2020-13-01') < local_date(at)", "processing", "expected ISO text"),
        ("time(at) < local_time(at)", "processing", "takes one string literal"),
        ("record.source in [record.id]", "processing", "only literal values"),
    ],
)
def test_type_errors_explain_themselves(text: str, context: str, message: str) -> None:
    with pytest.raises(ConditionError) as info:
        Condition.build(text, VOCABS[context], TZ)
    assert message in str(info.value)
    assert isinstance(info.value, PolicyError)
    assert text in str(info.value)  # the error quotes the condition


def test_unknown_name_lists_what_the_rule_can_read() -> None:
    with pytest.raises(ConditionError) as info:
        Condition.build("subjekt.suppressed", VOCABS["routing"], TZ)
    message = str(info.value)
    assert "this rule can read:" in message
    assert "record.collected_at" in message
    assert "purpose," not in message  # routing rules cannot read the purpose


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lambda: True", "Lambda is not allowed"),
        ("(lambda x: x)(at)", "only named functions can be called"),
        ("record.source.lower() == 'x'", "only named functions can be called"),
        ("record.source.startswith('q')", "only named functions can be called"),
        ("record.categories[0] == 'email'", "Subscript is not allowed"),
        ("record.id[::-1] == 'x'", "Subscript is not allowed"),
        ("eval('1 == 1')", "unknown function 'eval'"),
        ("exec('import os')", "unknown function 'exec'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('touch /tmp/fairproc-pwned')", "only named functions"),
        ("getattr(record, 'id') == 'x'", "unknown function 'getattr'"),
        ("().__class__.__bases__", "a dotted name must start with a plain name"),
        ("record.__class__ == 'x'", "unknown name 'record.__class__'"),
        ("__builtins__", "unknown name '__builtins__'"),
        ("[x for x in record.categories]", "ListComp is not allowed"),
        ("at if true else at", "IfExp is not allowed"),
        ("{'a': 1}", "Dict is not allowed"),
        ("f'{at}' == 'x'", "JoinedStr is not allowed"),
        ("(x := 1)", "NamedExpr is not allowed"),
        ("in_office_hours(instant=at)", "positional only"),
        ("in_office_hours(*[at])", "Starred is not allowed"),
        ("at * 2", "only + and -"),
        ("-at", "only 'not' and a sign before a number"),
        ("b'x' == 'x'", "bytes literals are not allowed"),
        ("1j == 1", "complex literals are not allowed"),
        ("[record.id] == 1", "only literal values"),
    ],
)
def test_disallowed_syntax_is_refused_without_running_anything(text: str, message: str) -> None:
    with pytest.raises(ConditionError) as info:
        Condition.build(text, VOCABS["processing"], TZ)
    assert message in str(info.value)


def test_parsing_never_evaluates(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "ran"
    monkeypatch.chdir(tmp_path)
    for text in (
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"exec(\"open('{marker}', 'w')\")",
    ):
        with pytest.raises(ConditionError):
            Condition.build(text, VOCABS["processing"], TZ)
    assert not marker.exists()


def test_syntax_errors_give_a_column() -> None:
    with pytest.raises(ConditionError) as info:
        parse("record.source == == 'quick_quote'")
    assert info.value.column == 18
    assert "not a valid expression" in info.value.message


def test_a_condition_of_the_wrong_kind_is_refused_for_an_instant_slot() -> None:
    with pytest.raises(ConditionError, match="must give a instant"):
        Condition.build("subject.suppressed", VOCABS["retention"], TZ, Kind.INSTANT)
    cond = Condition.build("subject.last_interaction + P4Y", VOCABS["retention"], TZ, Kind.INSTANT)
    assert cond.type.kind is Kind.INSTANT


# --- compiled once per policy ------------------------------------------------------------------


def test_a_records_condition_is_compiled_once_per_policy_and_the_memo_is_bounded() -> None:
    import gc

    import attrs

    from fairproc import model
    from fairproc.storage import RECORDS_CONDITIONS_KEPT, records_condition

    policy = load_policy("flexioffices")
    text = "record.source == 'quick_quote' and record.resolved_at is None"
    first = records_condition(text, policy)
    assert records_condition(text, policy) is first
    assert records_condition(first, policy) is first  # a Condition, by its text
    other = attrs.evolve(policy)  # an equal policy, another object: its own memo
    assert records_condition(text, other) is not first
    # One-off conditions do not grow it without end: the oldest go, and come back compiled.
    for days in range(RECORDS_CONDITIONS_KEPT + 10):
        records_condition(f"record.collected_at <= at - P{days + 1}D", policy)
    memo = model.derived(policy)["records conditions"]
    assert len(memo) == RECORDS_CONDITIONS_KEPT and text not in memo
    again = records_condition(text, policy)
    assert again is not first and again.node == first.node
    # A condition refused for what it reads is refused every time, never remembered.
    for _ in range(2):
        with pytest.raises(ConditionError, match="purpose"):
            records_condition("purpose == 'marketing_updates'", policy)
    # The memo goes with its policy: nothing in it holds the policy alive.
    key = id(other)
    assert key in model._DERIVED
    del other
    gc.collect()
    assert key not in model._DERIVED
