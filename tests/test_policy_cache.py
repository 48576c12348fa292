"""The compiled-policy cache: a policy read from the user's cache folder is the policy read
from its rule files, and the cache is only read while those files are byte for byte the same."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from fairproc import Engine, PolicyError, Record, World, load_policy
from fairproc import loader as loader_module
from fairproc.loader import policy_cache_dir
from fairproc.rule_files import PolicyReader

REFERENCE = Path(loader_module.__file__).parents[2] / "rules" / "flexioffices"
AT = dt.datetime(2027, 1, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("FAIRPROC_CACHE_DIR", str(folder))
    # each load below is a new process's first: the in-memory cache forgets between them
    monkeypatch.setattr(loader_module, "_cache", {})
    return folder


@pytest.fixture
def policy_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "flexioffices"
    shutil.copytree(REFERENCE, folder, ignore=shutil.ignore_patterns("scenarios", "interop"))
    return folder


def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader_module, "_cache", {})


def reads_files(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record each time the rule files are read (a cache miss)."""
    reads: list[Path] = []
    original = PolicyReader.read

    def read(self: PolicyReader) -> dict[str, object]:
        reads.append(Path(self.folder))
        return original(self)

    monkeypatch.setattr(PolicyReader, "read", read)
    return reads


def answers(policy: object) -> list[str]:
    assert isinstance(policy, loader_module.Policy)
    record = Record(
        "h1",
        "ada",
        "handbook_download",
        dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC),
        {"name": "Ada", "email": "ada@example.com"},
    )
    engine = Engine(policy, World([record]))
    return [
        engine.may_process("h1", "marketing_updates", AT).explain(),
        engine.route("h1", AT).explain(),
        engine.retention("h1", AT).explain(),
        engine.may_email("ada", AT).explain(),
    ]


def test_a_policy_from_the_cache_is_the_policy_from_its_files(
    cache: Path, policy_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = reads_files(monkeypatch)
    first = load_policy(policy_folder)
    assert reads == [policy_folder] and len(list(cache.glob("*.pickle"))) == 1
    fresh_process(monkeypatch)
    second = load_policy(policy_folder)
    assert reads == [policy_folder], "the second load read the TOML again"
    assert second == first and second is not first
    assert second.digest == first.digest and second.path == first.path
    assert answers(second) == answers(first)


def test_a_changed_rule_file_is_read_again(
    cache: Path, policy_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_policy(policy_folder)
    rules = policy_folder / "policy.toml"
    text = rules.read_text(encoding="utf-8")
    assert first.info.title in text
    stat = rules.stat()
    # the same size and modification time: only the bytes tell the change
    changed = text.replace(first.info.title, first.info.title[::-1])
    assert len(changed) == len(text)
    rules.write_text(changed, encoding="utf-8")
    os.utime(rules, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fresh_process(monkeypatch)
    reads = reads_files(monkeypatch)
    second = load_policy(policy_folder)
    assert reads == [policy_folder]
    assert second.info.title == first.info.title[::-1]
    assert second.digest != first.digest


def test_the_cache_is_off_when_its_folder_is_set_empty(
    tmp_path: Path, policy_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRPROC_CACHE_DIR", "")
    fresh_process(monkeypatch)
    assert policy_cache_dir() is None
    reads = reads_files(monkeypatch)
    load_policy(policy_folder)
    fresh_process(monkeypatch)
    load_policy(policy_folder)
    assert reads == [policy_folder, policy_folder]


def test_the_default_folder_is_the_users_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAIRPROC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(loader_module.sys, "platform", "linux")
    assert policy_cache_dir() == tmp_path / "xdg" / "fairproc" / "policies"


def test_a_damaged_entry_is_a_miss_and_is_written_again(
    cache: Path, policy_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_policy(policy_folder)
    (entry,) = cache.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    fresh_process(monkeypatch)
    reads = reads_files(monkeypatch)
    assert load_policy(policy_folder) == first
    assert reads == [policy_folder]
    fresh_process(monkeypatch)
    assert load_policy(policy_folder) == first
    assert reads == [policy_folder], "the rewritten entry was not read"


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX's")
def test_an_entry_others_can_write_is_never_read(
    cache: Path, policy_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_policy(policy_folder)
    (entry,) = cache.glob("*.pickle")
    entry.chmod(0o666)
    fresh_process(monkeypatch)
    reads = reads_files(monkeypatch)
    load_policy(policy_folder)
    assert reads == [policy_folder]


def test_a_policy_with_problems_is_never_cached(
    cache: Path, policy_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = policy_folder / "policy.toml"
    rules.write_text(rules.read_text(encoding="utf-8") + "\n[unknown_section]\n", "utf-8")
    with pytest.raises(PolicyError):
        load_policy(policy_folder)
    assert not cache.exists() or not list(cache.glob("*.pickle"))


def test_a_new_process_loading_from_the_cache_imports_only_what_deciding_needs(
    cache: Path, policy_folder: Path
) -> None:
    """The cold start's path: a cache hit reads no TOML (tomllib), structures nothing (cattrs),
    hashes nothing (hashlib), and needs no pathlib; ``-S`` keeps ``site`` from importing
    any of them first."""
    import subprocess
    import sys

    import attrs

    code = (
        "import sys, fairproc\n"
        f"fairproc.load_policy({str(policy_folder)!r})\n"
        "names = ('tomllib', 'cattrs', 'hashlib', 'pathlib')\n"
        "print(' '.join(m for m in names if m in sys.modules))"
    )
    search = [str(Path(loader_module.__file__).parents[1]), str(Path(attrs.__file__).parents[1])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(search), "FAIRPROC_CACHE_DIR": str(cache)}

    def imported() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.split()

    assert {"tomllib", "cattrs"} <= set(imported())  # a miss reads and structures the files
    assert imported() == []
