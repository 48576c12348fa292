"""The Spark store at scale: a retention sweep over generated worlds, beside a hand-written Spark
SQL job doing the same selection and beside the SQLite store; an access lookup; and, with
``--standalone``, the same sweep on a local standalone cluster (a master and two workers started
here with Spark's own ``spark-class``) checked to give the same answer as local mode.

    python bench/spark.py                          # 1,000,000 records, local[2]
    python bench/spark.py --records 100000 1000000 10000000 --standalone

The worlds are bench/worlds.py's (the same records, timelines and suppression as every other
sweep benchmark): the SQLite file it caches is read once and imported into a Spark store
folder under /tmp/fairproc-bench (``SparkStore.load``), so both stores hold the same rows.

Printed per size: records, due items, seconds and microseconds per record for the fairproc
sweep plan (``plan_sweep`` on the Spark store: the due condition compiled to Spark SQL), for
the hand-written Spark SQL statement of bench/sweep.py over the same Parquet tables, and for the
SQLite store's sweep plan; then one subject's access lookup (its history: records, events,
suppression). Figures depend on the machine and its load: read them side by side.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worlds
from sweep import baseline_sql
from worlds import AT

from fairproc import Engine, load_policy
from fairproc.sweep import plan_sweep

POLICY = load_policy("flexioffices")
IMPORT_CHUNK = 200_000
TABLES = {  # Spark table -> the SQLite store's table and columns
    "records": ("fairproc_records", "seq, id, subject, source, collected_at, data"),
    "categories": ("fairproc_categories", "record_id, category, subject, norm"),
    "events": ("fairproc_events", "seq, id, subject, kind, at, record, purpose"),
    "suppression": ("fairproc_suppression", "seq, email, email_norm, at, reason"),
}


def spark_folder(n: int) -> Path:
    """The Spark store holding the world of ``n`` records (imported from the SQLite file)."""
    from fairproc.adapters.spark import SCHEMAS, SparkStore, spark_session

    folder = worlds.CACHE / f"spark-{worlds._key(n)}"
    if (folder / "CURRENT").is_file():
        return folder
    source = worlds.sqlite_path(n)
    spark = spark_session()
    staging = Path(tempfile.mkdtemp(prefix="spark-import-", dir=worlds.CACHE))
    started = time.perf_counter()
    frames: dict[str, Any] = {}
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as db:
        for name, (table, columns) in TABLES.items():
            cursor = db.execute(f"SELECT {columns} FROM {table}")
            part = 0
            while rows := cursor.fetchmany(IMPORT_CHUNK):
                frame = spark.createDataFrame(rows, SCHEMAS[name])
                frame.write.parquet(str(staging / name / f"part-{part}"))
                part += 1
            frames[name] = (
                spark.read.schema(SCHEMAS[name]).parquet(str(staging / name / "*"))
                if part
                else spark.createDataFrame([], SCHEMAS[name])
            )
    store = SparkStore(folder)
    try:
        store.load(frames)
    finally:
        store.close()
    subprocess.run(["rm", "-rf", str(staging)], check=False)
    print(f"  imported {n:,} records into {folder} in {time.perf_counter() - started:.0f} s")
    return folder


def timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def spark_case(n: int) -> dict[str, Any]:
    from fairproc.adapters.spark import SparkStore

    store = SparkStore(spark_folder(n), create=False)
    try:
        engine = Engine(POLICY, store)
        plan_sweep(engine, AT)  # warm: the JVM's first plans are slower than any later one
        seconds, plan = timed(lambda: plan_sweep(engine, AT))
        due = sorted(item.record for item in plan.items)
        # The hand-written job: bench/sweep.py's statement over the same Parquet tables.
        version = store._current()
        for name in ("records", "events"):
            version.frames[name].createOrReplaceTempView(f"fairproc_{name}")
        sql, params = baseline_sql(AT)
        try:
            store.spark.sql(sql, args=params).count()
            hand_seconds, hand = timed(
                lambda: [row[0] for row in store.spark.sql(sql, args=params).collect()]
            )
            hand_note = "" if sorted(hand) == due else " (a different selection!)"
        except Exception as error:  # Spark refused the statement: say so, go on
            hand_seconds, hand_note = float("nan"), f" (Spark refused it: {str(error)[:120]})"
        first = store.get_record(due[0]) if due else None
        subject = first.subject if first is not None else "nobody"
        store.histories(POLICY, [subject])
        access_seconds, _ = timed(lambda: store.histories(POLICY, [subject]))
        return {
            "n": n,
            "due": len(due),
            "digest": hashlib.sha256("\n".join(due).encode()).hexdigest()[:16],
            "seconds": seconds,
            "hand": hand_seconds,
            "hand_note": hand_note,
            "access": access_seconds,
        }
    finally:
        store.close()


def sqlite_case(n: int) -> tuple[float, int]:
    from fairproc.adapters.sql import SqlStore

    store = SqlStore(f"sqlite:///{worlds.sqlite_path(n)}", create=False)
    try:
        engine = Engine(POLICY, store)
        seconds, plan = timed(lambda: plan_sweep(engine, AT))
        return seconds, len(plan.items)
    finally:
        store.close()


def standalone(n: int) -> str:
    """The sweep in a child process on a standalone cluster started here: its due count and
    digest, to compare with local mode's."""
    import pyspark

    home = Path(pyspark.__file__).parent
    spark_class = home / "bin" / "spark-class"
    env = dict(os.environ, SPARK_HOME=str(home))
    port = 7177
    master = subprocess.Popen(
        [
            str(spark_class),
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            "0",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = [
        subprocess.Popen(
            [
                str(spark_class),
                "org.apache.spark.deploy.worker.Worker",
                "--cores",
                "1",
                "--memory",
                "2g",
                "--webui-port",
                "0",
                f"spark://127.0.0.1:{port}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        time.sleep(15)  # the master up, the workers registered
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--master", f"spark://127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return child.stdout.strip() or child.stderr.strip()[-500:]
    finally:
        for process in [*workers, master]:
            process.terminate()
        for process in [*workers, master]:
            process.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--standalone", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from fairproc.adapters.spark import spark_session

    spark_session(args.master)
    if args.child:
        case = spark_case(args.child)
        print(f"{case['due']} {case['digest']} {case['seconds']:.1f}")
        return 0
    print(f"Spark store sweep at {AT:%Y-%m-%d}, master {args.master}")
    print(
        f"{'records':>11} {'due':>9} {'fairproc s':>10} {'us/rec':>7} {'hand SQL s':>10} "
        f"{'us/rec':>7} {'SQLite s':>9} {'us/rec':>7} {'access s':>8}"
    )
    for n in args.records:
        case = spark_case(n)
        lite, lite_due = (float("nan"), -1) if args.no_sqlite else sqlite_case(n)
        per = 1e6 / n
        print(
            f"{n:>11,} {case['due']:>9,} {case['seconds']:>10.1f} {case['seconds'] * per:>7.1f} "
            f"{case['hand']:>10.1f} {case['hand'] * per:>7.1f} {lite:>9.1f} {lite * per:>7.1f} "
            f"{case['access']:>8.2f}{case['hand_note']}"
            + ("" if lite_due in (-1, case["due"]) else f" (SQLite found {lite_due:,} due!)")
        )
        if args.standalone:
            print(f"  local mode: {case['due']} {case['digest']}")
            print(f"  standalone (master + 2 workers): {standalone(n)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
