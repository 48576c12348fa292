"""fairproc export fides: a Fides system manifest, validated by fideslang's own models; the
policy's Fides mapping table, checked by lint; the YAML writer, read back by PyYAML."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from fairproc import Policy, lint, load_policy
from fairproc.cli import main
from fairproc.errors import PolicyError
from fairproc.interop import fides, yamlout
from fairproc.interop.mapping import load_interop
from fairproc.interop.terms import FIDES_KINDS, fides_keys
from helpers import ACME, write_policy

fideslang = pytest.importorskip("fideslang")
yaml = pytest.importorskip("yaml")

FLEXI = load_policy("flexioffices")


def manifest_of(policy: Policy) -> dict[str, object]:
    """The manifest as a Fides tool reads it: the YAML text, parsed."""
    loaded = yaml.safe_load(fides.dumps(policy))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def system() -> fideslang.System:
    (document,) = manifest_of(FLEXI)["system"]
    return fideslang.System.model_validate(document)


def test_the_packaged_key_list_is_fideslang_default_taxonomy() -> None:
    taxonomy = fideslang.DEFAULT_TAXONOMY
    for kind in FIDES_KINDS:
        assert fides_keys(kind) == {item.fides_key for item in getattr(taxonomy, kind)}, kind


def test_the_manifest_validates_with_fideslang_models(system: fideslang.System) -> None:
    (document,) = manifest_of(FLEXI)["system"]
    # fideslang ignores keys it does not know: every key written must be one of its fields
    assert set(document) <= set(fideslang.System.model_fields)
    for declaration in document["privacy_declarations"]:
        assert set(declaration) <= set(fideslang.PrivacyDeclaration.model_fields)
    assert fideslang.Taxonomy(system=[system]).system == [system]
    assert system.fides_key == "flexioffices"
    assert system.legal_name == "Flexioffices"
    assert system.does_international_transfers
    assert system.uses_cookies


def test_every_key_is_in_fideslang_default_taxonomy(system: fideslang.System) -> None:
    taxonomy = fideslang.DEFAULT_TAXONOMY
    known = {kind: {i.fides_key for i in getattr(taxonomy, kind)} for kind in FIDES_KINDS}
    for declaration in system.privacy_declarations:
        assert declaration.data_use in known["data_use"]
        assert set(declaration.data_categories) <= known["data_category"]
        assert set(declaration.shared_categories) <= known["data_category"]
        assert set(declaration.data_subjects) <= known["data_subject"]


def test_every_purpose_and_basis_has_a_declaration(system: fideslang.System) -> None:
    table = load_interop(FLEXI).fides
    assert table is not None
    by_name = {d.name: d for d in system.privacy_declarations}
    expected = 0
    for purpose in FLEXI.purposes.values():
        bases = list(dict.fromkeys(g.basis for g in purpose.bases))
        for basis in bases:
            expected += 1
            name = purpose.title + (f" ({fides.BASIS_TITLES[basis]})" if len(bases) > 1 else "")
            declaration = by_name[name]
            assert declaration.data_use == table["purpose"][purpose.id].key
            assert declaration.legal_basis_for_processing == fides.LEGAL_BASIS[basis]
            assert declaration.flexible_legal_basis_for_processing is False
    assert len(system.privacy_declarations) == expected == len(FLEXI.purposes) + 1  # office_search


def test_declarations_hold_the_mapped_categories_of_their_sources(
    system: fideslang.System,
) -> None:
    by_name = {d.name: d for d in system.privacy_declarations}
    marketing = by_name["Market news, new offices and reports"]
    assert marketing.data_use == "marketing.communications.email"
    assert marketing.data_categories == ["user.name", "user.contact.email"]
    assert marketing.data_subjects == ["customer"]
    assert marketing.data_shared_with_third_parties
    assert "Email service (USA)" in (marketing.third_parties or "")
    analytics = by_name["Website analytics"]
    assert analytics.data_categories == ["user.device.ip_address", "user.device.device_id"]
    assert analytics.data_subjects == ["visitor"]
    assert "retention.cookies: P12M counted from record.collected_at" in (
        analytics.retention_period or ""
    )
    # an unmapped category is left out, never guessed
    search = by_name["Contact you to help find office space (contract)"]
    assert "user.contact.address" in search.data_categories
    assert len(search.data_categories) == len(set(search.data_categories))


def test_the_manifest_says_what_it_leaves_out() -> None:
    text = fides.dumps(FLEXI)
    table = load_interop(FLEXI).fides
    assert table is not None
    unmapped = [i for i, e in table["category"].items() if e.key is None]
    assert unmapped
    head = [line for line in text.splitlines() if line.startswith("#")]
    for ident in unmapped:
        assert any(f"category {ident}:" in line for line in head), ident


def test_lint_lists_the_unmapped_ids_and_nothing_missing() -> None:
    table = load_interop(FLEXI).fides
    assert table is not None
    findings = lint(FLEXI)
    unmapped = {f.rule for f in findings if f.code == "fides_unmapped"}
    assert unmapped == {
        f"{t}.{i}" for t, entries in table.items() for i, e in entries.items() if e.key is None
    }
    assert {f.severity for f in findings if f.code == "fides_unmapped"} == {"info"}
    codes = {f.code for f in findings}
    assert not codes & {"fides_not_mapped", "fides_key_unknown", "fides_mapping_missing"}
    assert "data_subjects_undeclared" not in codes


# --- a policy of our own: gaps and mistakes in the table ---------------------------------------

DATA = """
    [category.email]
    title = "Email"
    clause = "your email"

    [category.shoe_size]
    title = "Shoe size"
    clause = "your shoe size"

    [source.signup]
    title = "Sign-up"
    categories = ["email", "shoe_size"]
    clause = "when you sign up"

    [purpose.news]
    title = "News"
    clause = "we send news"
    [[purpose.news.bases]]
    basis = "consent"
    sources = ["signup"]
    clause = "if you agree"
"""


def small(tmp_path: Path, fides_toml: str | None, subjects_toml: str | None = None) -> Policy:
    folder = write_policy(tmp_path, {"data.toml": DATA})
    (folder / "interop").mkdir()
    if fides_toml is not None:
        (folder / "interop" / "fides.toml").write_text(
            textwrap.dedent(fides_toml).lstrip(), "utf-8"
        )
    if subjects_toml is not None:
        (folder / "interop" / "subjects.toml").write_text(
            textwrap.dedent(subjects_toml).lstrip(), "utf-8"
        )
    return load_policy(folder)


def test_lint_reports_gaps_and_unknown_keys_with_suggestions(tmp_path: Path) -> None:
    policy = small(
        tmp_path,
        """
        [category]
        email = "user.contact.emial"
        [purpose]
        news = "marketing.communications.email"
        """,
        """
        [subject.member]
        title = "Members"
        dpv = "dpv:Membr"
        fides = "custmer"
        clause = "our members"
        """,
    )
    findings = {(f.code, f.rule): f for f in lint(policy)}
    missing = findings[("fides_not_mapped", "category.shoe_size")]
    assert missing.severity == "warning"
    assert "shoe_size is missing" in missing.message
    typo = findings[("fides_key_unknown", "category.email")]
    assert "did you mean user.contact.email" in typo.message
    assert "did you mean customer" in findings[("fides_key_unknown", "subject.member")].message
    assert "did you mean dpv:Member" in findings[("dpv_term_unknown", "subject.member")].message
    with pytest.raises(PolicyError) as caught:
        fides.export_fides(policy)
    messages = [p.message for p in caught.value.problems]
    assert any("shoe_size has no entry" in m for m in messages)
    assert any("user.contact.emial is not a data_category" in m for m in messages)
    assert any("custmer is not a data_subject" in m for m in messages)


def test_an_unmapped_purpose_is_listed_and_left_out(tmp_path: Path) -> None:
    policy = small(
        tmp_path,
        """
        [category]
        email = "user.contact.email"
        shoe_size = { unmapped = "no fideslang key for shoe sizes" }
        [purpose]
        news = { unmapped = "our news is not a Fides data use" }
        """,
    )
    unmapped = [f for f in lint(policy) if f.code == "fides_unmapped"]
    assert {f.rule for f in unmapped} == {"category.shoe_size", "purpose.news"}
    assert any("no fideslang key for shoe sizes" in f.message for f in unmapped)
    manifest, left_out = fides.export_fides(policy)
    assert manifest["system"][0]["privacy_declarations"] == []
    assert left_out == [
        "purpose news: our news is not a Fides data use",
        "category shoe_size: no fideslang key for shoe sizes",
    ]
    fideslang.System.model_validate(manifest["system"][0])


def test_a_mistaken_table_is_refused_with_file_and_line(tmp_path: Path) -> None:
    policy = small(  # the rule files load: the mapping is read apart from them
        tmp_path,
        """
        [category]
        email = "user.contact.email"
        shoe_sise = "user"
        shoe_size = { unmaped = "typo" }
        """,
    )
    with pytest.raises(PolicyError) as caught:
        load_interop(policy)
    problems = {(p.path, p.line) for p in caught.value.problems}
    assert (("category", "shoe_sise"), 3) in problems
    assert (("category", "shoe_size"), 4) in problems
    assert all(p.file and p.file.endswith("fides.toml") for p in caught.value.problems)
    # lint reports the broken file as errors and goes on
    invalid = [f for f in lint(policy) if f.code == "interop_file_invalid"]
    assert len(invalid) == 2
    assert {f.severity for f in invalid} == {"error"}
    assert any("fides.toml:3: category.shoe_sise: unknown category" in f.message for f in invalid)
    assert any(f.code == "dpv_term_missing" for f in lint(policy))


def test_a_policy_without_a_table_cannot_be_exported_and_lint_says_so() -> None:
    acme = load_policy(ACME)
    assert "fides_mapping_missing" in {f.code for f in lint(acme)}
    with pytest.raises(PolicyError, match="no Fides mapping"):
        fides.export_fides(acme)
    result = CliRunner().invoke(main, ["export", "fides", str(ACME)])
    assert result.exit_code == 2
    assert "interop/fides.toml" in result.output


def test_the_command_writes_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "flexioffices.yml"
    result = CliRunner().invoke(main, ["export", "fides", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == manifest_of(FLEXI)


# --- the YAML writer ---------------------------------------------------------------------------


def test_the_manifest_text_reads_back_as_written() -> None:
    manifest, _ = fides.export_fides(FLEXI)
    assert yaml.safe_load(fides.dumps(FLEXI)) == manifest


_SCALARS = st.none() | st.booleans() | st.integers() | st.text()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _VALUES, max_size=5), st.lists(st.text(), max_size=3))
def test_yaml_written_reads_back_equal(document: dict[str, object], comments: list[str]) -> None:
    assert yaml.safe_load(yamlout.dump(document, comments)) == (document or None)


@pytest.mark.parametrize(
    "text", ["no", "null", "1.0", "- x", "a: b", "#", "'", '"', "\\", "\u2028", "\x85", "\ufeff"]
)
def test_strings_stay_strings(text: str) -> None:
    assert yaml.safe_load(yamlout.dump({"k": text, text: [text]})) == {"k": text, text: [text]}


def test_what_yaml_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot write float"):
        yamlout.dump({"k": 1.5})
    with pytest.raises(TypeError, match="mapping keys must be strings"):
        yamlout.dump({1: "x"})  # type: ignore[dict-item]


def test_subjects_must_name_real_sources_and_quote_the_notice(tmp_path: Path) -> None:
    policy = small(
        tmp_path,
        None,
        """
        [subject.member]
        title = "Members"
        sources = ["signup", "kiosk"]
        colour = "blue"
        """,
    )
    with pytest.raises(PolicyError) as caught:
        load_interop(policy)
    messages = {(p.path, p.message.split(" (")[0]) for p in caught.value.problems}
    assert (("subject", "member", "sources"), "unknown source 'kiosk'") in messages
    assert (("subject", "member", "colour"), "unknown key 'colour'") in messages
    assert any(path == ("subject", "member", "clause") for path, _ in messages)


def test_lint_warns_of_a_source_no_subject_covers(tmp_path: Path) -> None:
    folder = write_policy(
        tmp_path,
        {
            "data.toml": DATA
            + """
            [source.kiosk]
            title = "Kiosk"
            categories = ["email"]
            clause = "at the kiosk"
            """
        },
    )
    (folder / "interop").mkdir()
    (folder / "interop" / "subjects.toml").write_text(
        '[subject.member]\ntitle = "Members"\nsources = ["signup"]\nclause = "members"\n', "utf-8"
    )
    uncovered = [f for f in lint(load_policy(folder)) if f.code == "data_subjects_undeclared"]
    assert [(f.rule, f.severity) for f in uncovered] == [("source.kiosk", "warning")]
