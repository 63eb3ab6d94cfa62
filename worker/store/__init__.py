"""The store: the only code that reads and writes the database, one module per aggregate.

    store/feeds.py       feeds (poll state, claims), heartbeats
    store/items.py       items and stories (new-item filter, story members, retention)
    store/channels.py    channel state (errors, last success, disabled)
    store/silences.py    silences
    outbox/store.py      alerts (matches), ops events, deliveries and digests
    read.py              the queries the CLI shows (the read model)

Functions take and return plain typed data. Dedup relies on unique constraints with
``ON CONFLICT DO NOTHING``: two workers racing on one feed insert an item (and so an alert)
once; the loser gets no row back and goes quiet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import FromClause, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

ERROR_MAX = 500  # characters of an error message kept in a last_error column


def dialect_insert(session: Session, table: FromClause) -> Any:
    """An INSERT with the dialect's ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(cast(Table, table))  # a mapped class's __table__ is a Table


def insert_ignore(
    session: Session, table: FromClause, rows: list[dict[str, Any]], conflict: Sequence[str]
) -> list[Any]:
    """Insert rows, skip those that hit ``conflict``; the primary key of each row, None for
    a skipped one (one statement per row: the caller needs to know which won)."""
    if not rows:
        return []
    pk = next(iter(cast(Table, table).primary_key.columns))
    stmt = dialect_insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    return [session.execute(stmt.values(row).returning(pk)).scalar() for row in rows]


def insert_many_ignore(
    session: Session, table: FromClause, rows: list[dict[str, Any]], conflict: Sequence[str]
) -> None:
    """Insert rows in one executemany, skipping those that hit ``conflict``."""
    if rows:
        stmt = dialect_insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
        session.execute(stmt, rows)
