"""Conditions compiled to Spark SQL: :mod:`fairproc.adapters.sqlcompile`'s compiler, rendered for
Spark.

The planning is the SQL compiler's, unchanged: which names are columns and which correlated
subqueries over the events table, the ``where``/``sure`` pair and what is finished in Python,
calendar periods solved exactly into ranges of a column, merged ranges of one latest instant
asked with EXISTS probes. Only two things differ on Spark:

* rendering: SQLAlchemy statements are rendered by a plain ANSI dialect with named parameter
  markers (``:name``), which ``SparkSession.sql(text, args=...)`` binds as literals, so no
  value is ever spliced into the text;
* the interactions fixpoint (:meth:`Compiler.counted`): the SQL compiler nests the retention
  due condition one level down inside each correlated subquery over the subject's records.
  Spark's decorrelation cannot plan a correlated subquery nested inside another (it fails at
  execution), so here each level is a query of its own: the records with an ``overdue`` flag
  (the due condition compiled one level down), materialised as a persisted table that the
  level above reads as a plain table. Each level is computed once per (store version,
  instant); the store computes the part of the due condition no level changes once for all
  of them (:meth:`fairproc.adapters.spark.SparkStore._counted_table`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql.elements import ColumnElement

from .sqlcompile import SENTINEL, Compiler, _Rows

__all__ = ["CountedTable", "SparkCompiler", "SparkDialect", "render"]

CountedTable = Callable[[int], "tuple[sa.Table, bool] | None"]
"""What a :class:`SparkCompiler` asks for the collections that count at a level: the records
with their ``overdue`` flag at ``level`` (a table with id, subject, collected_at, overdue) and
whether that flag is exact, or None when it is not exact (the fact is then checked in
Python)."""


class SparkDialect(DefaultDialect):
    """ANSI SQL as Spark's parser reads it: native booleans, named parameters."""

    name = "spark"
    supports_native_boolean = True

    def __init__(self) -> None:
        super().__init__(paramstyle="named")


DIALECT = SparkDialect()


def render(statement: sa.ClauseElement) -> tuple[str, dict[str, Any]]:
    """``statement`` as Spark SQL text and its parameters (for ``spark.sql(text, args=...)``);
    ``IN`` lists expanded into one parameter per value."""
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


class SparkCompiler(Compiler):
    """The SQL compiler, its fixpoint levels read from materialised tables (see the module's
    docstring)."""

    def __init__(self, *args: Any, counted_table: CountedTable, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.counted_table = counted_table

    def counted(self) -> tuple[Any, list[ColumnElement[bool]], bool]:
        if self._counted is None:
            if self.level < 0:
                return super().counted()  # every record counts: no nesting
            found = self.counted_table(self.level - 1)
            if found is None:
                rr = self._alias(self.t.records, "rr")
                self._counted = (rr, [], False)  # not exact: the fact is checked in Python
            else:
                table, _ = found
                rr = self._alias(table, "rr")
                # The record asked about counts for itself, but not through ``rr.id = r.id OR
                # ...``: a correlation under OR makes Spark decorrelate a scalar subquery into a
                # nested-loop join. Its own collection is added where the rows are read
                # instead: ``probe`` asks it already (``_Rows.own``), ``greatest`` below.
                self._counted = (rr, [rr.c.overdue == 0], True)
        return self._counted

    def greatest(self, rows: Sequence[_Rows]) -> ColumnElement[Any]:
        """The greatest instant of ``rows``, and of each one's own collection (the record
        asked about) when it is not later than ``at``."""
        found = super().greatest(rows)
        owns = [each.own for each in rows if each.own is not None]
        if not owns:
            return found
        padded = [sa.func.coalesce(found, SENTINEL)] + [
            sa.func.coalesce(sa.case((own <= self.at_us, own)), SENTINEL) for own in owns
        ]
        return sa.func.nullif(sa.func.greatest(*padded), SENTINEL)
