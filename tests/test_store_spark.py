"""The Spark store (spark+parquet://) in local mode: the contract kit, every shipped scenario,
and writes that are whole or not at all."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Event, Record, load_policy
from fairproc.storage import AuditEntry, ChangeSet, Store, StoreError, open_store
from fairproc.testing import strategies as fst
from fairproc.testing.contract import CONDITIONS, StoreContract, expected_matches
from fairproc.world import World


def spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'fairproc[spark]')"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.path.exists(os.path.join(java_home, "bin", "java"))) and not (
        shutil.which("java")
    ):
        return "no Java runtime (Spark needs Java 17+): set JAVA_HOME or put java on PATH"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    reason = spark_missing()
    if reason is not None:
        if os.environ.get(REQUIRE):
            pytest.fail(f"{REQUIRE} is set, and Spark cannot run: {reason}")
        pytest.skip(reason)
    from fairproc.adapters.spark import spark_session

    # A whole test session's stores come and go in one driver: more than the default 1g heap.
    # Tables of a few dozen rows: a query's cost is Spark's per-job work, not the data. Whole-
    # stage code generation compiles Java for every new instant (literals are inlined), which
    # costs more than it saves here; one shuffle partition per core.
    session = spark_session(
        "local[2]",
        {
            "spark.driver.memory": "2g",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
        },
    )
    yield session
    session.stop()


REQUIRE = "FAIRPROC_REQUIRE_SPARK"  # CI sets it: a missing Spark fails there, never skips
pytestmark = pytest.mark.skipif(
    spark_missing() is not None and not os.environ.get(REQUIRE), reason=str(spark_missing())
)


class TestSparkStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _session(self, spark: Any) -> None:
        """Every test of the kit runs in the shared session."""

    def make_store(self, tmp_path: Path) -> Store:
        from fairproc.adapters.spark import SparkStore

        return SparkStore(tmp_path / "lake")

    def reopen(self, store: Store, tmp_path: Path) -> Store | None:
        from fairproc.adapters.spark import SparkStore

        return SparkStore(tmp_path / "lake", create=False)

    def break_next_write(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> bool:
        from fairproc.adapters import spark as spark_adapter

        def fail(stage: str) -> None:
            if stage == "prepared":  # every new group written, the manifest not yet replaced
                raise RuntimeError("injected fault")

        monkeypatch.setattr(spark_adapter, "crash_point", fail)
        return True


# --- every shipped scenario on a Spark store -------------------------------------------------


def test_every_shipped_scenario_passes_on_spark(spark: Any, tmp_path: Path) -> None:
    from fairproc.scenarios import UrlStores, run_paths

    scenarios = Path(__file__).resolve().parent.parent / "rules" / "flexioffices" / "scenarios"
    results = run_paths([scenarios], UrlStores(f"spark+parquet://{tmp_path}/lake"))
    failures = [f"{r.file}: {p}" for r in results for p in r.problems] + [
        f"{r.file}: {e.expectation.name}: expected {dict(e.expected)}, actual {dict(e.actual)}"
        for r in results
        for e in r.expectations
        if not e.passed
    ]
    assert failures == []
    assert sum(len(r.expectations) for r in results) >= 200
    # every scenario's store was removed after it
    assert not any((tmp_path / "lake").glob("fpscn_*/CURRENT"))


# --- writes: whole or not at all, and decided once ------------------------------------------

WHEN = dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)


def _seed(store: Any) -> None:
    store.apply(
        ChangeSet(
            put_records=[
                Record(f"r{i}", f"s{i % 3}", "website_visit", WHEN, {"ip_address": "192.0.2.1"})
                for i in range(6)
            ],
            add_events=[Event("s0", "website_visit", WHEN, record="r0")],
        )
    )


def _state(store: Any) -> tuple[Any, ...]:
    return (
        store.revision,
        [r.id for r in store.iter_records()],
        [(e.subject, e.kind) for e in store.subject_events("s0")],
        len(list(store.audit_entries())),
    )


def test_a_write_failing_before_its_commit_leaves_the_old_version(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairproc.adapters import spark as spark_adapter
    from fairproc.adapters.spark import SparkStore

    store = SparkStore(tmp_path / "lake")
    try:
        _seed(store)
        later = [Record(f"q{i}", "s9", "website_visit", WHEN, {}) for i in range(3)]
        store.apply(ChangeSet(put_records=later))  # a records group of its own
        before = _state(store)
        manifest = tmp_path / "lake" / "CURRENT"
        groups = set(json.loads(manifest.read_text())["tables"]["records"])

        def fail(stage: str) -> None:
            raise RuntimeError(f"injected fault at {stage}")

        monkeypatch.setattr(spark_adapter, "crash_point", fail)
        erase = ChangeSet(
            delete_records=["r0", "r3"],
            delete_subject_events=["s0"],
            audit=[AuditEntry(WHEN, "erase", "s0", record="r0")],
        )
        with pytest.raises(RuntimeError, match="injected fault"):
            store.apply(erase)
        assert _state(store) == before  # nothing half applied
        monkeypatch.setattr(spark_adapter, "crash_point", None)
        store.apply(erase)  # the job is re-runnable; it removes the groups the fault left
        after = _state(store)
        assert after[1] == ["r1", "r2", "r4", "r5", "q0", "q1", "q2"]
        assert after[2] == [] and after[3] == 1
        now = set(json.loads(manifest.read_text())["tables"]["records"])
        # only the group holding r0 and r3 was rewritten; the later write's group is untouched
        assert len(now - groups) == 1 and len(groups - now) == 1
        # the group the fault left half written is gone; the dropped one stays one commit
        on_disk = {p.name for p in (tmp_path / "lake" / "tables" / "records").iterdir()}
        assert on_disk == now | groups
    finally:
        store.close()


CHILD = r"""
import os, sys, signal, datetime as dt
from fairproc.adapters import spark as spark_adapter
from fairproc.adapters.spark import SparkStore
from fairproc.storage import ChangeSet, AuditEntry

def die(stage):
    if stage == "prepared":
        os.kill(os.getpid(), signal.SIGKILL)  # killed midway: groups written, no commit

spark_adapter.crash_point = die
store = SparkStore(sys.argv[1], create=False)
when = dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)
store.apply(ChangeSet(delete_records=["r1", "r4"],
                      audit=[AuditEntry(when, "retention_delete", None, record="r1")]))
"""


def test_a_write_killed_midway_leaves_the_old_version_readable(spark: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    from fairproc.adapters.spark import SparkStore

    folder = tmp_path / "lake"
    store = SparkStore(folder)
    try:
        _seed(store)
        before = _state(store)
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder)],
            capture_output=True,
            timeout=900,
            check=False,
        )
        assert child.returncode == -9, child.stderr.decode()[-2000:]
        reopened = SparkStore(folder, create=False)
        try:
            assert _state(reopened) == before
            reopened.apply(ChangeSet(delete_records=["r1", "r4"]))  # re-run: applies whole
            assert [r.id for r in reopened.iter_records()] == ["r0", "r2", "r3", "r5"]
        finally:
            reopened.close()
    finally:
        store.close()


def test_two_deciding_writers_never_both_delete_and_audit(spark: Any, tmp_path: Path) -> None:
    import threading

    from fairproc.adapters.spark import SparkStore

    store = SparkStore(tmp_path / "lake")
    other = SparkStore(tmp_path / "lake", create=False)
    try:
        _seed(store)
        results: list[ChangeSet] = []

        def decide(source: Any) -> ChangeSet:
            if source.get_record("r2") is None:
                return ChangeSet()
            return ChangeSet(
                delete_records=["r2"],
                audit=[AuditEntry(WHEN, "retention_delete", None, record="r2")],
            )

        threads = [
            threading.Thread(target=lambda s=s: results.append(s.apply_decided(decide)))
            for s in (store, other)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(bool(c) for c in results) == [False, True]
        assert [a.record for a in store.audit_entries()] == ["r2"]
        assert store.get_record("r2") is None
    finally:
        other.close()
        store.close()


def test_writing_inside_reading_is_refused(spark: Any, tmp_path: Path) -> None:
    from fairproc.adapters.spark import SparkStore

    store = SparkStore(tmp_path / "lake")
    try:
        _seed(store)
        with store.reading():
            seen = store.revision
            with pytest.raises(StoreError, match="inside reading"):
                store.apply(ChangeSet(delete_records=["r0"]))
            assert store.revision == seen
    finally:
        store.close()


def test_urls_open_and_refuse(spark: Any, tmp_path: Path) -> None:
    from fairproc.adapters.spark import SparkStore

    opened = open_store(f"spark+parquet://{tmp_path}/lake?prefix=p1_")
    try:
        assert isinstance(opened, SparkStore) and opened.folder == tmp_path / "lake" / "p1_"
    finally:
        opened.close()
    with pytest.raises(StoreError, match="no store at"):
        open_store(f"spark+parquet://{tmp_path}/none", create=False)
    with pytest.raises(StoreError, match="unknown parameter 'bogus'"):
        open_store(f"spark+parquet://{tmp_path}/lake?bogus=1")
    with pytest.raises(StoreError, match="prefix"):
        open_store(f"spark+parquet://{tmp_path}/lake?prefix=../x")


# --- Spark SQL answers as the interpreter does, on generated worlds --------------------------

POLICY = load_policy("flexioffices")


@settings(max_examples=6, deadline=None)
@given(st.data())
def test_spark_sql_answers_as_the_interpreter(spark: Any, data: st.DataObject) -> None:
    """On a generated world at a generated instant, every condition of the kit (and the
    policy's retention due condition) selects in Spark exactly what the reference interpreter
    selects, and counts the same."""
    import tempfile

    from fairproc.adapters.spark import SparkStore

    from fairproc.conditions import render
    from fairproc.retention import due_node

    generated = data.draw(fst.worlds(POLICY, max_records=5, max_events=4), label="world")
    # A blank address is refused by every store's apply: the world keeps what a store can.
    kept = [entry for entry in generated.suppression if entry.email.strip()]
    world = World(generated.records, generated.events, kept)
    at = data.draw(fst.instants_for(POLICY, world), label="at")
    conditions = [
        *data.draw(
            st.lists(st.sampled_from(CONDITIONS), min_size=2, max_size=3, unique=True),
            label="conditions",
        ),
        render(due_node(POLICY)),
    ]
    with tempfile.TemporaryDirectory() as folder:
        store = SparkStore(Path(folder) / "lake")
        try:
            store.apply(
                ChangeSet(
                    put_records=generated.records,
                    add_events=generated.events,
                    add_suppression=kept,
                )
            )
            for condition in conditions:
                want = expected_matches(world, condition, at, POLICY)
                got = [r.id for r in store.find_records(condition, at, POLICY)]
                assert got == want, condition
                assert store.count_records(condition, at, POLICY) == len(want), condition
        finally:
            store.close()


# --- lookups by subject and address ---------------------------------------------------------


def test_files_are_sorted_for_lookups_and_address_owners_are_found(
    spark: Any, tmp_path: Path
) -> None:
    """Every file a write leaves is sorted by the column its table's lookups filter on (so
    Parquet's statistics skip what cannot hold a subject), and ``subjects_giving`` gives each
    subject's first collection of an address, also for a category row ``load`` took whose
    subject is not its record's (found by its record's id alone), as a join would: from a
    small version's tables read once, and through Spark queries (``local_rows`` 0)."""
    from fairproc.adapters.spark import LOOKED_UP_BY, SparkStore

    store = SparkStore(tmp_path / "lake")
    try:
        later = WHEN + dt.timedelta(days=3)
        store.apply(
            ChangeSet(
                put_records=[
                    Record("r1", "s9", "contact_form", later, {"email": "Ada@Example.com"}),
                    Record("r2", "s1", "contact_form", WHEN, {"email": "ada@example.com"}),
                    Record("r3", "s9", "quick_quote", WHEN, {"email": "ada@example.com "}),
                    Record("r4", "s5", "quick_quote", later, {"email": "bo@example.com"}),
                ],
                add_events=[Event(s, "website_visit", WHEN) for s in ("s9", "s1", "s5", "s3")],
            )
        )
        # A category row whose subject is not its record's, as an unchecked bulk load may hold.
        odd = spark.createDataFrame(
            [("r4", "email", "s7", "cy@example.com")],
            "record_id STRING, category STRING, subject STRING, norm STRING",
        )
        store.load({"categories": odd})
        asked = ["ada@example.com", "cy@example.com", "x@y.z"]
        small = store.subjects_giving("email", asked)
        queried = SparkStore(tmp_path / "lake", create=False)
        queried.local_rows = 0  # every lookup a Spark query, as in a large store
        try:
            large = queried.subjects_giving("email", asked)
        finally:
            queried.close()
        expected = [
            ("s1", "ada@example.com", WHEN),
            ("s7", "cy@example.com", later),
            ("s9", "ada@example.com", WHEN),
        ]
        assert sorted(small) == sorted(large) == expected
        for name, column in LOOKED_UP_BY.items():
            for path in (tmp_path / "lake" / "tables" / name).glob("g-*/*.parquet"):
                values = [row[0] for row in spark.read.parquet(str(path)).select(column).collect()]
                assert values == sorted(values), (name, path)
    finally:
        store.close()
