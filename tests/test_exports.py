"""Export file names: a subject id never writes outside --out, and no two subjects share a
file (issue 17, finding 1)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fairproc import Record
from fairproc.cli import main
from fairproc.exports import MAX_STEM, export_name, export_stem, write_exports
from fairproc.storage import ChangeSet, open_store

UTC = dt.UTC
WINDOWS_RESERVED = ["CON", "PRN", "AUX", "NUL", "COM1", "LPT9", "con.txt", "Nul"]
NASTY = ["..", ".", "/", "\\", "\x00", "a/../../b", "C:\\x", "/etc/passwd", "~", "%2E", ""]

subject_ids = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="./\\\x00%~-_aA:", max_size=40),
    st.sampled_from(WINDOWS_RESERVED + NASTY),
    st.builds(lambda n: "x" * n, st.integers(0, 2000)),
)


@settings(max_examples=400)
@given(subject_ids, st.sampled_from(["access", "portability", "../r"]))
@example("../../x", "access")
@example("ada.smith", "access")
def test_an_export_name_is_one_plain_file_name(subject: str, right: str) -> None:
    for suffix in (".json", ".md", ".csv"):
        name = export_name(subject, right, suffix)
        assert name.endswith(suffix) and len(name.encode()) <= 255
        stem = name[: -len(suffix)]
        # No separator, NUL, dot, space or drive: it names a file in the folder, nothing else.
        assert not set(stem) & set("/\\\x00. :")
        assert Path("out", name).parent == Path("out")
        # Windows reserves a name by what comes before its first dot.
        assert name.split(".")[0].upper() not in {n.upper() for n in WINDOWS_RESERVED}


@settings(max_examples=400)
@given(subject_ids, subject_ids)
@example("ada.smith", "ada.jones")
@example("Ada", "ada")
@example("ada.smith", "ada%2Esmith")
@example("x" * 2000, "x" * 2001)
def test_no_two_subjects_share_an_export(first: str, second: str) -> None:
    if first == second:
        return
    one, two = export_stem(first), export_stem(second)
    # Different, and still different on a file system that ignores case.
    assert one.casefold() != two.casefold()
    assert len(one) <= MAX_STEM and len(two) <= MAX_STEM


def test_write_exports_stays_in_the_folder_and_replaces_a_planted_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    (out / export_name("ada", "access", ".json")).symlink_to(victim)
    written = write_exports(out, "ada", "access", {".json": "{}\n"})
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert [p.read_text(encoding="utf-8") for p in written] == ["{}\n"]
    assert not (out / written[0].name).is_symlink()
    assert os.stat(written[0]).st_mode & 0o077 == 0  # private: personal data
    assert sorted(p.name for p in out.iterdir()) == ["ada-access.json"]  # no temp file left


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/exports.db"
    store = open_store(url)
    when = dt.datetime(2024, 1, 1, tzinfo=UTC)
    store.apply(
        ChangeSet(
            put_records=[
                Record(f"q{i}", subject, "quick_quote", when, {"name": subject})
                for i, subject in enumerate(
                    ["../../x", "/tmp/abs", "ada.smith", "ada.jones", "Ada", "ada"]
                )
            ]
        )
    )
    store.close()
    return url


def _request(store_url: str, subject: str, out: Path) -> list[str]:
    result = CliRunner().invoke(
        main,
        [
            "request",
            subject,
            "access",
            "--store",
            store_url,
            "--at",
            "2026-01-05T10:00:00Z",
            "--verified",
            "--out",
            str(out),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    written: list[str] = json.loads(result.stdout)["written"]
    return written


def test_request_writes_every_subject_inside_out_and_apart(store_url: str, tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "exports"
    subjects = ["../../x", "/tmp/abs", "ada.smith", "ada.jones", "Ada", "ada"]
    for subject in subjects:
        for path in _request(store_url, subject, out):
            assert Path(path).resolve().parent == out.resolve()
    # Nothing written anywhere else under tmp_path, and one .json per subject.
    outside = [p for p in tmp_path.rglob("*-access.*") if p.parent != out]
    assert outside == []
    names = {p.name.casefold() for p in out.glob("*.json")}
    assert len(names) == len(subjects)
    for subject in subjects:
        copy = json.loads((out / export_name(subject, "access", ".json")).read_text("utf-8"))
        assert copy["subject"] == subject
