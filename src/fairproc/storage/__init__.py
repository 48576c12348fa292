"""Storage: the interface every store implements, the values it moves, and what a new adapter
inherits. Each module holds one part of the design:

* :mod:`~fairproc.storage.interface`: the :class:`Store` Protocol and the named capability
  Protocols a store may add (row queries, bulk histories, snapshots, decided writes, ...);
* :mod:`~fairproc.storage.values`: :class:`ChangeSet`, :class:`AuditEntry`,
  :class:`StoreError` and the checks a store runs before writing;
* :mod:`~fairproc.storage.codec`: instants, data encoding and the limits on what is kept;
* :mod:`~fairproc.storage.history`: :func:`build_history`, the one way a subject's history is
  made, and :func:`load_histories`;
* :mod:`~fairproc.storage.fallback`: :class:`BaseStore` and the Python answers a store that
  pushes nothing down still gives;
* :mod:`~fairproc.storage.pseudonyms`: how the audit log names subjects;
* :mod:`~fairproc.storage.registry`: :func:`open_store`, adapters found through the
  ``fairproc.stores`` entry-point group.

The adapters (``fairproc.adapters.memory``, ``.sql``, ``.csv``) hold the I/O and depend on
this package, never the reverse. Conventions every adapter keeps (the contract kit in
:mod:`fairproc.testing.contract` checks them): instants come back as UTC datetimes equal to
the instants put in, at microsecond precision; a record's ``data`` comes back as
:func:`encode_data` / :func:`decode_data` round-trip it (tuples become lists);
``subject_records`` lists records in the order they were first put, ``subject_events`` in the
order they were added; ``suppression_entries`` answers as :class:`fairproc.world.World` does.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fairproc.storage.codec import (
        EPOCH,
        MAX_EMAIL_LENGTH,
        MAX_ID_LENGTH,
        UTC,
        category_norms,
        decode_data,
        encode_data,
        format_instant,
        instant_to_us,
        normalise_data,
        parse_stored_instant,
        row_value,
        us_to_instant,
        utc,
    )
    from fairproc.storage.fallback import (
        RECORDS_CONDITIONS_KEPT,
        WRITE_BATCH,
        BaseStore,
        count_matching,
        count_records,
        filter_records,
        find_rows,
        matching,
        reading,
        records_condition,
        records_value,
        rows_of,
        select_rows,
        write_batch,
    )
    from fairproc.storage.history import build_history, load_histories, read_history, with_histories
    from fairproc.storage.interface import (
        RECORDS_CONTEXT,
        AddressIndex,
        AuditKeys,
        BulkHistories,
        ConditionLike,
        Decide,
        DecidedWrites,
        HistoryBatches,
        HistorySource,
        OwnTables,
        RecordListing,
        Replaceable,
        Revisioned,
        Row,
        RowQueries,
        Snapshots,
        Store,
        WriteBatching,
    )
    from fairproc.storage.pseudonyms import (
        PSEUDONYM,
        audit_subject,
        pseudonymised,
        subject_audit,
        subject_pseudonym,
    )
    from fairproc.storage.registry import ENTRY_POINTS, hide_password, open_store, schemes
    from fairproc.storage.values import (
        AuditEntry,
        ChangeSet,
        StoreError,
        audit_detail,
        audit_from_stored,
        check_changes,
        normalised,
    )

# Each name is read from its module on first use: the engine imports the interface alone, and a
# process that never writes or opens a URL never loads the rest.
_MODULES = {
    **dict.fromkeys(
        [
            "EPOCH",
            "MAX_EMAIL_LENGTH",
            "MAX_ID_LENGTH",
            "UTC",
            "category_norms",
            "decode_data",
            "encode_data",
            "format_instant",
            "instant_to_us",
            "normalise_data",
            "parse_stored_instant",
            "row_value",
            "us_to_instant",
            "utc",
        ],
        "codec",
    ),
    **dict.fromkeys(
        [
            "RECORDS_CONDITIONS_KEPT",
            "WRITE_BATCH",
            "BaseStore",
            "count_matching",
            "count_records",
            "filter_records",
            "find_rows",
            "matching",
            "reading",
            "records_condition",
            "records_value",
            "rows_of",
            "select_rows",
            "write_batch",
        ],
        "fallback",
    ),
    **dict.fromkeys(
        ["build_history", "load_histories", "read_history", "with_histories"], "history"
    ),
    **dict.fromkeys(
        [
            "RECORDS_CONTEXT",
            "AddressIndex",
            "AuditKeys",
            "BulkHistories",
            "ConditionLike",
            "Decide",
            "DecidedWrites",
            "HistoryBatches",
            "HistorySource",
            "OwnTables",
            "RecordListing",
            "Replaceable",
            "Revisioned",
            "Row",
            "RowQueries",
            "Snapshots",
            "Store",
            "WriteBatching",
        ],
        "interface",
    ),
    **dict.fromkeys(
        ["PSEUDONYM", "audit_subject", "pseudonymised", "subject_audit", "subject_pseudonym"],
        "pseudonyms",
    ),
    **dict.fromkeys(["ENTRY_POINTS", "hide_password", "open_store", "schemes"], "registry"),
    **dict.fromkeys(
        [
            "AuditEntry",
            "ChangeSet",
            "StoreError",
            "audit_detail",
            "audit_from_stored",
            "check_changes",
            "normalised",
        ],
        "values",
    ),
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'fairproc.storage' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"fairproc.storage.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ENTRY_POINTS",
    "EPOCH",
    "MAX_EMAIL_LENGTH",
    "MAX_ID_LENGTH",
    "PSEUDONYM",
    "RECORDS_CONDITIONS_KEPT",
    "RECORDS_CONTEXT",
    "UTC",
    "WRITE_BATCH",
    "AddressIndex",
    "AuditEntry",
    "AuditKeys",
    "BaseStore",
    "BulkHistories",
    "ChangeSet",
    "ConditionLike",
    "Decide",
    "DecidedWrites",
    "HistoryBatches",
    "HistorySource",
    "OwnTables",
    "RecordListing",
    "Replaceable",
    "Revisioned",
    "Row",
    "RowQueries",
    "Snapshots",
    "Store",
    "StoreError",
    "WriteBatching",
    "audit_detail",
    "audit_from_stored",
    "audit_subject",
    "build_history",
    "category_norms",
    "check_changes",
    "count_matching",
    "count_records",
    "decode_data",
    "encode_data",
    "filter_records",
    "find_rows",
    "format_instant",
    "hide_password",
    "instant_to_us",
    "load_histories",
    "matching",
    "normalise_data",
    "normalised",
    "open_store",
    "parse_stored_instant",
    "pseudonymised",
    "read_history",
    "reading",
    "records_condition",
    "records_value",
    "row_value",
    "rows_of",
    "schemes",
    "select_rows",
    "subject_audit",
    "subject_pseudonym",
    "us_to_instant",
    "utc",
    "with_histories",
    "write_batch",
]
