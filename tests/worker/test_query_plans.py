"""The store's hot queries each have an index they can use on PostgreSQL.

With ``enable_seqscan = off`` the planner picks a sequential scan only where no index
serves the query; and a usable index is one whose leading column the plan's index
condition names, not one read whole. The queries are the store's own statements
(``worker.store``), built as the store builds them, on a small analysed store.
bench/store_scale.py times the same statements on 10 million items.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from bench.store_scale import generate
from tests.conftest import pg_schema
from worker.db import make_engine, upgrade
from worker.store import plans

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Iterator[sa.Engine]:
    with pg_schema() as url:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as conn:
            generate(conn, items=4_000, feeds=40, now=NOW)
            conn.execute(sa.text("ANALYZE"))
        yield engine
        engine.dispose()


NOT_TABLE_READS = ("Subquery Scan", "Function Scan")


def scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The plan's reads of tables and indexes (a subquery scan reads its child's rows, a
    function scan the values of the statement, such as ``unnest`` of the band keys)."""
    if "Scan" in plan.get("Node Type", "") and plan["Node Type"] not in NOT_TABLE_READS:
        yield plan
    for child in plan.get("Plans", []):
        yield from scans(child)


def leading_columns(conn: sa.Connection) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
        )
    )
    return dict(rows.all())


@pytest.mark.parametrize("name", list(plans.QUERIES))
def test_each_hot_query_reads_an_index_by_its_leading_column(store: sa.Engine, name: str) -> None:
    with store.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))
        sql = plans.sql(conn, plans.QUERIES[name](NOW))
        plan = conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()[0]["Plan"]
        leading = leading_columns(conn)
    found = list(scans(plan))
    assert found, plan
    for node in found:
        relation = node.get("Relation Name") or node.get("Index Name")
        assert node["Node Type"] != "Seq Scan", (name, relation, plan)
        if "Index Name" not in node:  # a bitmap heap scan: its bitmap index scan is checked
            assert node["Node Type"] == "Bitmap Heap Scan", node
            continue
        index, condition = node["Index Name"], node.get("Index Cond", "")
        if (name, index) in plans.WHOLE_INDEX_READS:
            continue
        assert re.search(rf"\b{leading[index]}\b", condition), (name, index, condition)
