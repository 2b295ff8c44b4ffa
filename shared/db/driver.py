"""The hot path's fixed statements, compiled once by SQLAlchemy and run by psycopg itself.

Every pipeline step runs the same handful of statements (read the job, lock it, record the call,
write its events, update it), and settlement one large one (the roll-ups). For each, SQLAlchemy's
execution (a cache-key walk over the statement, an execution context, a result whose metadata is
rebuilt from the cursor's description) costs about twice what psycopg spends sending the
statement and reading its row (``benchmarks/step_bench.py``: the state read, the record
transaction). A :class:`DriverStatement` is compiled by SQLAlchemy once per process, in
PostgreSQL's own ``$n`` placeholders with its bind processors (JSON, UUID) taken from the
dialect, and then executed by a psycopg ``RawCursor`` on the connection under the session's
SQLAlchemy connection: same connection, same transaction, no placeholder translation per call
(psycopg caches that only for statements under 4 KB).

What SQLAlchemy would do around a statement is kept: its ``before_cursor_execute`` event fires
(statement counts, logging), and a driver error is raised as SQLAlchemy's (``OperationalError``
and the rest, which the runner and the API already handle), a lost connection invalidated first
so that the pool does not hand it out again. Rows come back as psycopg's tuples, which hold the
values SQLAlchemy returns for these columns: psycopg decodes UUID, JSONB, numeric and timestamps
itself (a test compares every column of the job row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from psycopg.pq import ExecStatus
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Row = tuple[Any, ...]

# Only renders: statements run on the connections of the process's engine, whose dialect this is.
DIALECT = psycopg_dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class _Slot:
    """One ``$n`` parameter: its name, the value the statement carries for it (a literal, a
    ``coalesce`` default) unless it is required, and its type's bind processor."""

    name: str
    required: bool
    default: Any
    processor: Callable[[Any], Any] | None

    def value(self, params: Mapping[str, Any]) -> Any:
        value = params[self.name] if self.required or self.name in params else self.default
        # Always through the processor, None included, as SQLAlchemy binds it (a JSON None is
        # JSON's null).
        return value if self.processor is None else self.processor(value)


class DriverStatement:
    """A statement with named bind parameters, executed on the driver's connection."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: tuple[str, tuple[_Slot, ...]] | None = None

    def _compile(self) -> tuple[str, tuple[_Slot, ...]]:
        if self._compiled is None:
            compiled = cast(SQLCompiler, self.statement.compile(dialect=DIALECT))
            binds = {name: bind for bind, name in compiled.bind_names.items()}
            slots = tuple(
                _Slot(
                    name,
                    binds[name].required,
                    compiled.params[name],
                    binds[name].type.dialect_impl(DIALECT).bind_processor(DIALECT),
                )
                for name in compiled.positiontup or ()
            )
            self._compiled = (str(compiled), slots)
        return self._compiled

    def execute(self, connection: Connection, params: Mapping[str, Any]) -> list[Row]:
        """Run the statement in ``connection``'s transaction; the rows it returns (none for a
        statement that returns none)."""
        sql, slots = self._compile()
        values = tuple(slot.value(params) for slot in slots)
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)  # the engine is postgresql+psycopg
        cursor: psycopg.RawCursor[Row] = psycopg.RawCursor(driver)
        connection.dispatch.before_cursor_execute(connection, cursor, sql, values, None, False)
        try:
            cursor.execute(sql, values)
            # The result's status, not ``cursor.description``: psycopg builds that anew per call.
            result = cursor.pgresult
            returned = result is not None and result.status == ExecStatus.TUPLES_OK
            return cursor.fetchall() if returned else []
        except psycopg.Error as error:
            raise _translated(connection, sql, values, cursor, error) from error
        finally:
            cursor.close()

    def first(self, connection: Connection, params: Mapping[str, Any]) -> Row | None:
        rows = self.execute(connection, params)
        return rows[0] if rows else None


def _translated(
    connection: Connection, sql: str, values: tuple[Any, ...], cursor: Any, error: Exception
) -> Exception:
    """``error`` as SQLAlchemy raises it for a statement it runs; the connection invalidated
    when the driver lost it, as SQLAlchemy would."""
    dialect = connection.dialect
    driver = connection.connection.driver_connection
    lost = dialect.is_disconnect(error, driver, cursor)  # type: ignore[arg-type]
    if lost:
        connection.invalidate(error)
    return DBAPIError.instance(
        sql, values, error, psycopg.Error, connection_invalidated=lost, dialect=dialect
    )
