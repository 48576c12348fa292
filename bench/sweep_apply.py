"""Applying a sweep beside planning it: ``apply_sweep`` must cost about what ``plan_sweep`` does.

    python bench/sweep_apply.py [--records 150000] [--adapters csv,sqlite]

The store is ``bench/worlds.py``'s generated world of ``--records`` records (about a third of
them due at :data:`worlds.AT`), cached under ``/tmp/fairproc-bench/``; each run works on a
fresh copy of it, as applying deletes. Timed, once each (a sweep applied cannot be applied
again): ``plan_sweep(engine, AT)``, then ``apply_sweep(engine, plan)`` with the store's own
batch size (its ``write_batch``), each batch decided again inside the store's write. Printed:
the due records, both times, and apply / plan; then the check that every due record is gone
and audited once.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import worlds

from fairproc import Engine, load_policy
from fairproc.storage import open_store
from fairproc.sweep import apply_sweep, plan_sweep


def run(adapter: str, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fairproc-apply-") as temp:
        if adapter == "csv":
            copy = Path(temp) / "store"
            shutil.copytree(worlds.csv_folder(n), copy)
            url = f"csv://{copy}"
        else:
            copy = Path(temp) / "store.db"
            shutil.copyfile(worlds.sqlite_path(n), copy)
            url = f"sqlite:///{copy}"
        store = open_store(url)
        try:
            engine = Engine(load_policy("flexioffices"), store)
            started = time.perf_counter()
            plan = plan_sweep(engine, worlds.AT)
            planned = time.perf_counter() - started
            started = time.perf_counter()
            result = apply_sweep(engine, plan)
            applied = time.perf_counter() - started
            due = {i.record for i in plan.items}
            audited = Counter(
                a.record for a in store.audit_entries() if a.action in ("delete", "anonymise")
            )
            held = {r.id for r in store.iter_records()}
            ok = (
                result.applied == len(due)
                and set(audited) == due
                and max(audited.values(), default=1) == 1
                and not held & {i.record for i in plan.items if i.action == "delete"}
            )
            print(
                f"{adapter:<7} {n:>9,} records {len(due):>8,} due   plan {planned:7.2f} s   "
                f"apply {applied:7.2f} s ({result.batches} batches)   "
                f"apply/plan {applied / planned:5.2f}   {'checked' if ok else 'WRONG'}",
                flush=True,
            )
        finally:
            store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=150_000)
    parser.add_argument("--adapters", default="csv,sqlite")
    args = parser.parse_args(argv)
    for adapter in args.adapters.split(","):
        run(adapter, args.records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
