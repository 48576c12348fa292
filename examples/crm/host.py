"""The example CRM host: create or drop its schema on SQLite, PostgreSQL or MariaDB, or as a
folder of CSV files (one per table, each with its header row), and fill it with generated
customers (deterministic: the same seed and size give the same rows, in SQL or CSV).

    python examples/crm/host.py create sqlite:///crm.db
    python examples/crm/host.py generate sqlite:///crm.db --records 100000
    python examples/crm/host.py create csv:///tmp/crm
    python examples/crm/host.py generate csv:///tmp/crm --records 1000
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).parent
MAPPING = HERE / "mapping.toml"
TABLES = (  # children first: the order rows are deleted in
    "newsletter_unsubscribes",
    "lettings",
    "web_sessions",
    "calls",
    "handbook_downloads",
    "search_follow_ups",
    "enquiries",
    "customers",
)
_DDL = {"sqlite": "sqlite", "postgresql": "postgresql", "mysql": "mariadb", "mariadb": "mariadb"}


def ddl(backend: str) -> list[str]:
    """The statements of the schema file for ``backend`` (sqlite, postgresql, mysql)."""
    text = (HERE / f"schema.{_DDL[backend]}.sql").read_text(encoding="utf-8")
    text = re.sub(r"--[^\n]*", "", text)
    return [s.strip() for s in text.split(";") if s.strip()]


def _reflect(engine: sa.Engine) -> sa.MetaData:
    """The schema's tables. SQLAlchemy skips the indexes on ``lower(trim(email))``, saying so
    in a warning: the generator writes rows and reads no index."""
    md = sa.MetaData()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        md.reflect(engine, only=list(TABLES))
    return md


def create_schema(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for statement in ddl(engine.url.get_backend_name()):
            conn.exec_driver_sql(statement)


def drop_schema(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        present = set(sa.inspect(conn).get_table_names())
        for table in TABLES:
            if table in present:
                conn.exec_driver_sql(f"DROP TABLE {table}")


def clear(conn: sa.Connection) -> None:
    """Delete every row of the host's tables (children first)."""
    for table in TABLES:
        conn.exec_driver_sql(f"DELETE FROM {table}")


_FIRST = ("Ada", "Bob", "Cat", "Dan", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Lee")
_LAST = ("Lovelace", "Hopper", "Turing", "Noether", "Curie", "Franklin", "Shannon", "Babbage")
_CHANNELS = ("qq", "mq", "chat", "form")
_START = dt.datetime(2015, 1, 1)


def _when(rng: random.Random) -> dt.datetime:
    return _START + dt.timedelta(seconds=rng.randrange(0, 12 * 365 * 86400))


def rows(records: int, seed: int = 19) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) pairs for about ``records`` records over ``records // 4`` customers: an
    enquiry or two each, handbook downloads, calls, web sessions (naive London time), search
    follow-ups, lettings and unsubscribes."""
    rng = random.Random(seed)
    customers = max(1, records // 4)
    made = 0
    for c in range(1, customers + 1):
        ref = f"cust-{c:08d}"
        yield "customers", {"customer_id": c, "customer_ref": ref, "created_at": _when(rng)}
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{first.lower()}.{last.lower()}{c}@example.com"
        enquiry = None
        for _ in range(rng.choice((1, 1, 2))):
            made += 1
            enquiry = f"enq-{made:09d}"
            yield (
                "enquiries",
                {
                    "enquiry_ref": enquiry,
                    "customer_id": c,
                    "channel": rng.choice(_CHANNELS),
                    "created_at": _when(rng),
                    "first_name": first,
                    "last_name": last,
                    "company": f"{last} Ltd",
                    "email": email,
                    "phone": f"+44 20 7946 {rng.randrange(10000):04d}",
                    "office_size": rng.randrange(1, 60),
                    "office_location": rng.choice(("London", "Leeds", "Bristol")),
                },
            )
        if rng.random() < 0.4:
            made += 1
            yield (
                "handbook_downloads",
                {
                    "download_ref": f"dl-{made:09d}",
                    "customer_id": c,
                    "downloaded_at": _when(rng),
                    "full_name": f"{first} {last}",
                    "email": email,
                },
            )
        if rng.random() < 0.3:
            made += 1
            yield (
                "calls",
                {
                    "call_ref": f"call-{made:09d}",
                    "customer_id": c,
                    "started_at": _when(rng),
                    "phone_number": f"+44 20 7946 {rng.randrange(10000):04d}",
                    "recording_url": f"rec/{made}.ogg",
                    "duration_seconds": rng.randrange(30, 900),
                },
            )
        if rng.random() < 0.2 and enquiry is not None:
            made += 1
            yield (
                "search_follow_ups",
                {
                    "follow_up_ref": f"fu-{made:09d}",
                    "customer_id": c,
                    "enquiry_ref": enquiry,
                    "held_at": _when(rng),
                    "budget": f"£{rng.randrange(1, 50) * 500}",
                    "business_type": "consultancy",
                },
            )
        while made < c * 4 - rng.randrange(0, 2):
            made += 1
            yield (
                "web_sessions",
                {
                    "session_ref": f"ws-{made:09d}",
                    "customer_id": c,
                    "started_at": _when(rng),  # naive: office-local wall time
                    "ip_address": f"192.0.2.{rng.randrange(256)}",
                },
            )
        if rng.random() < 0.05:
            yield "lettings", {"customer_id": c, "let_on": _when(rng), "office": "Unit 4"}
        if rng.random() < 0.05:
            yield "newsletter_unsubscribes", {"customer_id": c, "unsubscribed_at": _when(rng)}


def generate(engine: sa.Engine, records: int, seed: int = 19, batch: int = 5000) -> int:
    """Insert about ``records`` records (and their customers and events); returns the number
    of record rows. Timestamps aware where the column keeps a zone."""
    md = _reflect(engine)
    pending: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    count = 0
    record_tables = {
        "enquiries",
        "handbook_downloads",
        "calls",
        "search_follow_ups",
        "web_sessions",
    }

    def flush(conn: sa.Connection) -> None:
        for table in reversed(TABLES):  # parents first
            if pending[table]:
                conn.execute(sa.insert(md.tables[table]), pending[table])
                pending[table] = []

    with engine.begin() as conn:
        for table, row in rows(records, seed):
            for key, value in row.items():
                column = md.tables[table].c[key]
                if isinstance(value, dt.datetime) and getattr(column.type, "timezone", False):
                    row[key] = value.replace(tzinfo=dt.UTC)
            pending[table].append(row)
            count += table in record_tables
            if sum(len(v) for v in pending.values()) >= batch:
                flush(conn)
        flush(conn)
    return count


def columns() -> dict[str, list[str]]:
    """Each table's columns in the order of its DDL: a CSV file's header."""
    engine = sa.create_engine("sqlite://")
    try:
        create_schema(engine)
        md = _reflect(engine)
        return {t: [c.name for c in md.tables[t].columns] for t in TABLES}
    finally:
        engine.dispose()


def create_csv(folder: Path) -> None:
    """The schema as CSV files in ``folder``: one per table, a header row and no rows."""
    write_csv(folder, {t: [] for t in TABLES})


def write_csv(folder: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    """Each table's rows as ``<table>.csv`` in ``folder`` (naive timestamps as ISO 8601
    without an offset, as the SQLite schema keeps them; an empty cell for NULL)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, header in columns().items():
        with open(folder / f"{table}.csv", "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(header)
            for row in tables.get(table, []):
                writer.writerow([_cell(row.get(c)) for c in header])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def generate_csv(folder: Path, records: int, seed: int = 19) -> int:
    """:func:`generate`'s rows as CSV files in ``folder`` (replacing what they held)."""
    tables: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLES}
    for table, row in rows(records, seed):
        tables[table].append(row)
    write_csv(folder, tables)
    return sum(
        len(tables[t])
        for t in TABLES
        if t not in ("customers", "lettings", "newsletter_unsubscribes")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("create", "drop", "generate"))
    parser.add_argument("url")
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    if args.url.startswith("csv:"):
        from fairproc.adapters.csv import folder_of

        folder = Path(folder_of(args.url))
        if args.action == "create":
            create_csv(folder)
        elif args.action == "drop":
            for table in TABLES:
                (folder / f"{table}.csv").unlink(missing_ok=True)
        else:
            print(generate_csv(folder, args.records, args.seed), "records")
        return
    engine = sa.create_engine(args.url)
    try:
        if args.action == "create":
            create_schema(engine)
        elif args.action == "drop":
            drop_schema(engine)
        else:
            print(generate(engine, args.records, args.seed), "records")
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
