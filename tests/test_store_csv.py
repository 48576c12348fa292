"""The CSV adapter: fixed headers, errors naming file and line, values safe in a spreadsheet,
atomic replacement that survives a kill, a lock that keeps writers apart, streaming reads."""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from fairproc.adapters import csv as csv_adapter
from fairproc.adapters.csv import HEADERS, CsvStore, escape, unescape

from fairproc import Event, Record, SuppressionEntry
from fairproc.storage import AuditEntry, ChangeSet, StoreError, open_store

UTC = dt.UTC
T = dt.datetime(2024, 1, 31, 10, tzinfo=UTC)


def rec(i: int | str, subject: str = "ada", **data: object) -> Record:
    return Record(str(i), subject, "quick_quote", T, data)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(folder: Path) -> CsvStore:
    return CsvStore(folder)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix == ".csv"}


# --- format ----------------------------------------------------------------------------------


def test_each_file_has_its_fixed_header(store: CsvStore, folder: Path) -> None:
    store.apply(
        ChangeSet(
            put_records=[rec(1, email="a@example.com")],
            add_events=[Event("ada", "email_open", T)],
            add_suppression=[SuppressionEntry("a@example.com", T, "unsubscribed")],
            audit=[AuditEntry(T, "access", "ada")],
        )
    )
    for name, header in HEADERS.items():
        with open(folder / f"{name}.csv", newline="", encoding="utf-8") as f:
            assert next(csv.reader(f)) == list(header)
    assert (folder / "records.csv").read_bytes().split(b"\r\n")[1].decode() == (
        'r1,ada,quick_quote,2024-01-31T10:00:00Z,"{""email"":""a@example.com""}"'.replace("r1", "1")
    )


def test_a_wrong_header_is_named_at_open(folder: Path) -> None:
    folder.mkdir()
    (folder / "events.csv").write_text("subject,kind,when,record,purpose,id\n")
    with pytest.raises(
        StoreError, match=r"events\.csv:1: wrong header .*expected 'subject,kind,at"
    ):
        CsvStore(folder)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2,ada,quick_quote,2024-01-31T10:00:00Z", r"records\.csv:3: expected 5 fields"),
        ("2,ada,quick_quote,yesterday,{}", r"records\.csv:3: collected_at: .*yesterday"),
        ("2,ada,quick_quote,2024-01-31T10:00:00,{}", r"records\.csv:3: collected_at: .*offset"),
        ("2,ada,quick_quote,2024-01-31T10:00:00Z,{not json", r"records\.csv:3: data: "),
        ("2,,quick_quote,2024-01-31T10:00:00Z,{}", r"records\.csv:3: subject: is empty"),
        ('2,ada,quick_quote,2024-01-31T10:00:00Z,"{}"x"', r"records\.csv:3: "),
    ],
)
def test_a_malformed_row_is_named_by_file_and_line(
    store: CsvStore, folder: Path, row: str, message: str
) -> None:
    store.apply(ChangeSet(put_records=[rec(1)]))
    with open(folder / "records.csv", "a", encoding="utf-8") as f:
        f.write(row + "\n3,ada,quick_quote,2024-01-31T10:00:00Z,{}\n")
    with pytest.raises(StoreError, match=message):
        list(store.iter_records())
    with pytest.raises(StoreError, match=message):
        store.apply(ChangeSet(put_records=[rec(9)]))  # a rewrite refuses to copy it
    assert (folder / "records.csv").read_bytes().count(b"\n") == 4  # and leaves it as it was


def test_values_are_safe_to_open_in_a_spreadsheet(store: CsvStore, folder: Path) -> None:
    nasty = ["=1+2", "+44 20", "-1", "@SUM(A1)", "\tx", "\rx", "'quoted", "=cmd|' /C calc'!A0"]
    store.apply(
        ChangeSet(
            put_records=[
                Record(f"r{i}", value, "quick_quote", T, {}) for i, value in enumerate(nasty)
            ],
            add_events=[Event(value, value, T, purpose=value) for value in nasty],
            audit=[AuditEntry(T, value, value, value) for value in nasty],
        )
    )
    for name in ("records", "events", "audit"):
        with open(folder / f"{name}.csv", newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)
    assert [r.subject for r in store.iter_records()] == nasty
    assert [e.kind for v in nasty for e in store.subject_events(v)] == nasty
    assert [a.action for a in store.audit_entries()] == nasty


@pytest.mark.parametrize("value", ["", "x", "=", "'", "''=", "-1", " =x", "@"])
def test_escaping_round_trips(value: str) -> None:
    assert unescape(escape(value)) == value


def test_missing_files_read_as_empty(store: CsvStore, folder: Path) -> None:
    assert list(store.iter_records()) == []
    assert not list(folder.glob("*.csv"))


# --- atomic writes ---------------------------------------------------------------------------

KILLER = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from fairproc import Event, Record
    from fairproc.adapters import csv as adapter
    from fairproc.storage import ChangeSet
    folder, stage = sys.argv[1], sys.argv[2]

    def kill(name):
        if name == stage:
            os.kill(os.getpid(), signal.SIGKILL)

    adapter.crash_point = kill
    store = adapter.CsvStore(folder)
    t = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    store.apply(ChangeSet(
        put_records=[Record("new", "bob", "quick_quote", t, {"n": 1}),
                     Record("1", "ada", "quick_quote", t, {"changed": True})],
        add_events=[Event("bob", "email_open", t)],
    ))
    """
)


def _kill_during_write(folder: Path, stage: str) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLER, str(folder), stage], check=False)
    assert proc.returncode == -signal.SIGKILL


def test_a_write_killed_before_replacing_leaves_the_old_files_whole(
    store: CsvStore, folder: Path
) -> None:
    store.apply(ChangeSet(put_records=[rec(1), rec(2)], add_events=[Event("ada", "email_open", T)]))
    before, revision = files(folder), store.revision
    _kill_during_write(folder, "prepared")
    assert list(folder.glob("*.tmp-*"))  # the new files were written, then left behind
    assert files(folder) == before
    reopened = CsvStore(folder)
    assert [r.id for r in reopened.iter_records()] == ["1", "2"]
    assert reopened.revision == revision
    reopened.apply(ChangeSet(add_events=[Event("ada", "email_click", T)]))
    assert not list(folder.glob("*.tmp-*"))  # the next writer clears them away


@pytest.mark.parametrize("stage", ["journaled", "replaced"])
def test_a_write_killed_after_its_commit_point_is_completed(
    store: CsvStore, folder: Path, stage: str
) -> None:
    store.apply(ChangeSet(put_records=[rec(1), rec(2)]))
    revision = store.revision
    _kill_during_write(folder, stage)
    assert (folder / csv_adapter.JOURNAL).exists()
    reader = CsvStore(folder)  # any reader finishes the commit
    records = list(reader.iter_records())
    assert [r.id for r in records] == ["1", "2", "new"]
    assert records[0].data == {"changed": True}
    assert [e.kind for e in reader.subject_events("bob")] == ["email_open"]
    assert reader.revision != revision
    assert not (folder / csv_adapter.JOURNAL).exists()


def test_an_error_while_writing_leaves_nothing_behind(
    store: CsvStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply(ChangeSet(put_records=[rec(1)], audit=[AuditEntry(T, "first")]))
    before = files(folder)
    original = CsvStore._append
    calls: list[str] = []

    def failing(self: CsvStore, name: str, rows: list[list[str]], token: str) -> tuple[str, str]:
        calls.append(name)
        if name == "audit":
            raise OSError("disk full")
        return original(self, name, rows, token)

    monkeypatch.setattr(CsvStore, "_append", failing)
    with pytest.raises(OSError, match="disk full"):
        store.apply(
            ChangeSet(
                put_records=[rec(2)],
                add_events=[Event("ada", "email_open", T)],
                audit=[AuditEntry(T, "second")],
            )
        )
    assert calls == ["events", "audit"]
    assert files(folder) == before
    assert not list(folder.glob("*.tmp-*"))


# --- two writers ---------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    from fairproc import Event, Record
    from fairproc.storage import AuditEntry, ChangeSet, open_store
    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url)
    t = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for i in range(count):
        store.apply(ChangeSet(
            put_records=[Record(f"{name}-{i}", name, "quick_quote", t, {"n": i})],
            add_events=[Event(name, "email_open", t)],
            audit=[AuditEntry(t, "write", name)],
        ))
    """
)


def test_two_processes_writing_one_folder_lose_no_row(folder: Path) -> None:
    url = f"csv://{folder}"
    count = 40
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, name, str(count)])
        for name in ("left", "right")
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    store = open_store(url)
    ids = sorted(r.id for r in store.iter_records())
    assert ids == sorted(f"{n}-{i}" for n in ("left", "right") for i in range(count))
    assert len(store.subject_events("left")) == len(store.subject_events("right")) == count
    assert len(list(store.audit_entries())) == 2 * count
    assert store.revision.split()[0] == str(2 * count)


# --- streaming -----------------------------------------------------------------------------


def test_reads_stream_so_memory_does_not_grow_with_the_file(store: CsvStore) -> None:
    big = "x" * 400
    store.apply(ChangeSet(put_records=[rec(f"r{i:05}", note=big) for i in range(20_000)]))
    size = (store.folder / "records.csv").stat().st_size
    assert size > 8_000_000
    tracemalloc.start()
    try:
        count = 0
        for _ in store.iter_records():
            count += 1
        assert store.get_record("r19999") is not None
        assert store.subject_records("nobody") == ()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < size / 8  # a few rows at a time, not the file


# --- URLs -----------------------------------------------------------------------------------


def test_csv_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert CsvStore is type(open_store(f"csv://{tmp_path}/a"))
    assert open_store("csv:rel").folder == Path("rel")  # type: ignore[attr-defined]
    assert open_store("csv://./rel2").folder == Path("./rel2")  # type: ignore[attr-defined]
    with pytest.raises(StoreError, match="names no folder"):
        open_store("csv://")
    with pytest.raises(StoreError, match="no query"):
        open_store(f"csv://{tmp_path}/a?x=1")
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="is a file, not a folder"):
        open_store(f"csv://{tmp_path}/file")
    os.chmod(tmp_path, 0o500)
    try:
        if os.geteuid() != 0:  # root may write anywhere
            with pytest.raises(StoreError, match="cannot create folder"):
                open_store(f"csv://{tmp_path}/new/deeper")
    finally:
        os.chmod(tmp_path, 0o700)


# --- sweeps over a store larger than one partition ---------------------------------------------


def test_history_batches_split_a_large_store_and_give_each_subject_once(
    store: CsvStore,
) -> None:
    from fairproc.adapters.memory import MemoryStore

    from fairproc import Engine, load_policy
    from fairproc.sweep import plan_sweep

    policy = load_policy("flexioffices")
    sources = ["website_visit", "quick_quote", "handbook_download", "phone_call"]
    records = [
        Record(
            f"r{i}",
            f"s{i % 37}",
            sources[i % 4],
            T + dt.timedelta(days=11 * i),
            {"email": f"s{i % 37}@example.com", "note": f"line one\nline ${i}"},
        )
        for i in range(200)
    ]
    events = [Event(f"s{i % 37}", "email_open", T + dt.timedelta(days=13 * i)) for i in range(90)]
    events += [Event("s3", "enquiry_resolved", T + dt.timedelta(days=40), record="r1")]
    changes = ChangeSet(
        put_records=records,
        add_events=events,
        add_suppression=[SuppressionEntry("s5@example.com", T, "unsubscribed")],
    )
    store.apply(changes)
    memory = MemoryStore()
    memory.apply(changes)
    store.partition_bytes = 2_000  # several partitions, split through temporary files
    seen: dict[str, tuple[int, int]] = {}
    for batch in store.history_batches(policy, size=5):
        for subject, history in batch.items():
            assert subject not in seen
            seen[subject] = (len(history.records), len(history.events))
            expected = memory.histories(policy, [subject])[subject]
            assert history.records == expected.records and history.events == expected.events
            assert history.suppressed(T.timestamp() + 1) == expected.suppressed(T.timestamp() + 1)
    assert len(seen) == 37 and sum(r for r, _ in seen.values()) == 200
    at = T + dt.timedelta(days=4000)
    ours, theirs = plan_sweep(Engine(policy, store), at), plan_sweep(Engine(policy, memory), at)
    assert sorted(i.record for i in ours.items) == sorted(i.record for i in theirs.items)
    assert ours.counts() == theirs.counts() and len(ours.items) > 20


# --- reading what people and other tools write (issue 17, finding 4) ------------------------


def _records_file(folder: Path, *rows: str, bom: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = "\r\n".join([",".join(HEADERS["records"]), *rows]) + "\r\n"
    (folder / "records.csv").write_bytes(("\ufeff" if bom else "").encode() + text.encode())


def test_a_duplicated_record_id_is_refused_naming_both_lines(folder: Path) -> None:
    from fairproc import Engine, load_policy
    from fairproc.rights import request

    _records_file(
        folder,
        "q1,ada,quick_quote,2024-01-31T10:00:00Z,{}",
        "q2,ada,quick_quote,2024-01-31T10:00:00Z,{}",
        "q1,bob,quick_quote,2024-01-31T10:00:00Z,{}",
    )
    before = files(folder)
    store = CsvStore(folder)
    message = r"records\.csv:4: record id 'q1' is also on line 2"
    with pytest.raises(StoreError, match=message):
        list(store.iter_records())
    with pytest.raises(StoreError, match=message):
        store.subject_records("ada")
    with pytest.raises(StoreError, match=message):
        store.get_record("q1")
    # Erasing ada would delete bob's q1 too, unaudited: refused, and nothing changed.
    engine = Engine(load_policy("flexioffices"), store)
    with pytest.raises(StoreError, match=message):
        request(engine, "ada", "erasure", T, verified=True)
    with pytest.raises(StoreError, match=message):
        store.apply(ChangeSet(delete_records=["q1"]))
    assert files(folder) == before


def test_many_distinct_ids_are_not_taken_for_duplicates(store: CsvStore) -> None:
    store.apply(ChangeSet(put_records=[rec(f"r{i}") for i in range(30_000)]))
    assert sum(1 for _ in store.iter_records()) == 30_000


def test_a_byte_order_mark_is_accepted(folder: Path) -> None:
    _records_file(folder, "q1,ada,quick_quote,2024-01-31T10:00:00Z,{}", bom=True)
    store = CsvStore(folder)
    assert [r.id for r in store.iter_records()] == ["q1"]
    store.apply(ChangeSet(put_records=[rec("q2")]))
    assert [r.id for r in store.iter_records()] == ["q1", "q2"]


def test_a_byte_that_is_not_utf8_is_named_by_its_line(folder: Path) -> None:
    _records_file(
        folder,
        "q1,ada,quick_quote,2024-01-31T10:00:00Z,{}",
        "q2,ada,quick_quote,2024-01-31T10:00:00Z,{}",
    )
    with open(folder / "records.csv", "ab") as f:
        f.write(b"q3,ad\xff,quick_quote,2024-01-31T10:00:00Z,{}\r\n")
    with pytest.raises(StoreError, match=r"records\.csv:4: not UTF-8 text"):
        list(CsvStore(folder).iter_records())


def test_an_empty_file_is_not_a_store(folder: Path) -> None:
    folder.mkdir()
    (folder / "records.csv").write_bytes(b"")
    with pytest.raises(StoreError, match=r"records\.csv: is empty \(0 bytes\).*not a fairproc"):
        CsvStore(folder)


# --- spools (issue 17, finding 5) -----------------------------------------------------------

SWEEP_KILLER = textwrap.dedent(
    """
    import datetime as dt, os, signal, sys
    from fairproc import Engine, load_policy
    from fairproc.adapters.csv import CsvStore
    from fairproc.sweep import plan_sweep

    store = CsvStore(sys.argv[1])
    store.partition_bytes = 2_000  # many partitions: the split spools every row

    def kill(done, total):
        os.kill(os.getpid(), signal.SIGKILL)  # part way through, spools open

    engine = Engine(load_policy("flexioffices"), store)
    plan_sweep(engine, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), progress=kill, in_memory=0)
    """
)


def test_a_sweep_killed_part_way_leaves_no_spool_anywhere(folder: Path, tmp_path: Path) -> None:
    store = CsvStore(folder)
    when = dt.datetime(2024, 1, 1, tzinfo=UTC)
    store.apply(
        ChangeSet(
            put_records=[
                Record(f"w{i}", f"person{i}@example.com", "website_visit", when, {"n": "x" * 50})
                for i in range(300)
            ]
        )
    )
    before = sorted(p.name for p in folder.iterdir())
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", SWEEP_KILLER, str(folder)],
        check=False,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    assert proc.returncode == -signal.SIGKILL
    # Nothing in the temporary folder, nothing new in the store's: no name holds the rows.
    assert list(temp.iterdir()) == []
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_split_spools_unnamed_and_private_in_the_stores_folder(store: CsvStore) -> None:
    from fairproc import load_policy

    store.apply(ChangeSet(put_records=[rec(i, f"s{i}", note="y" * 80) for i in range(200)]))
    store.partition_bytes = 2_000
    opened: list[int] = []
    real = store._spool

    def spy() -> object:
        spool = real()
        opened.append(spool.fileno())
        info = os.fstat(spool.fileno())
        assert info.st_nlink == 0 and info.st_mode & 0o077 == 0  # unnamed, private
        where = Path(os.readlink(f"/proc/self/fd/{spool.fileno()}"))
        assert where.parent == store.folder.resolve()  # in the store's folder
        return spool

    store._spool = spy  # type: ignore[method-assign]
    batches = store.history_batches(load_policy("flexioffices"))
    seen = sum(len(b) for b in batches)
    assert seen == 200 and len(opened) == 2
    leftovers = [p for p in store.folder.iterdir() if p.name.startswith(".fairproc-spool-")]
    assert leftovers == []


def test_a_named_spool_left_behind_goes_at_the_next_open(store: CsvStore) -> None:
    left = store.folder / ".fairproc-spool-abc123"
    left.write_bytes(b"rows of personal data")
    CsvStore(store.folder)
    assert not left.exists()


def test_a_plans_spool_has_no_name_and_is_private() -> None:
    from fairproc.sweep import SweepItem, SweepItems

    items = SweepItems.of(
        (
            SweepItem(f"r{i}", f"person{i}@example.com", "website_visit", "delete", "x", T)
            for i in range(5000)
        ),
        in_memory=0,
    )
    spool = items._spool
    assert spool is not None
    info = os.fstat(spool.fileno())
    # Gone with the process, however it ends: no name a kill could leave behind.
    assert info.st_nlink == 0 and info.st_mode & 0o077 == 0
    assert len(items) == 5000 and items[4999].subject == "person4999@example.com"
