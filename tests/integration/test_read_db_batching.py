"""The PostgreSQL read database sends held-back rows together, yet every statement sees what preceded it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from copilot.projections.db import PostgresReadDatabase
from tests.conftest import fresh_postgres_database


@pytest.fixture
def db() -> Iterator[PostgresReadDatabase]:
    with fresh_postgres_database() as url:
        database = PostgresReadDatabase(url)
        try:
            with database.transaction() as tx:
                tx.execute("CREATE TABLE a (id int PRIMARY KEY, note text)")
                tx.execute("CREATE TABLE b (id int PRIMARY KEY, a_count int)")
            yield database
        finally:
            database.close()


def test_reads_and_updates_see_rows_written_before_them(db: PostgresReadDatabase) -> None:
    with db.transaction() as tx:
        for n in range(1, 6):
            tx.execute("INSERT INTO a (id, note) VALUES (:id, :note)", {"id": n, "note": f"row {n}"})
            # Interleaved with writes to another table: each table keeps its own order.
            tx.execute("INSERT INTO b (id, a_count) VALUES (:id, :count)", {"id": n, "count": n})
        counted = tx.fetch_one("SELECT count(*) AS n FROM a")
        tx.execute("UPDATE a SET note = 'changed' WHERE id = :id", {"id": 3})
        tx.execute("INSERT INTO a (id, note) VALUES (:id, :note) ON CONFLICT (id) DO NOTHING", {"id": 3, "note": "no"})
        tx.execute("INSERT INTO a (id, note) VALUES (:id, :note)", {"id": 6, "note": "100% % sign"})
    assert counted is not None and counted["n"] == 5
    rows = {r["id"]: r["note"] for r in db.fetch_all("SELECT id, note FROM a")}
    assert rows == {1: "row 1", 2: "row 2", 3: "changed", 4: "row 4", 5: "row 5", 6: "100% % sign"}
    assert [r["a_count"] for r in db.fetch_all("SELECT a_count FROM b ORDER BY id")] == [1, 2, 3, 4, 5]


def test_a_failing_row_rolls_back_the_whole_transaction(db: PostgresReadDatabase) -> None:
    with pytest.raises(Exception, match="duplicate key"), db.transaction() as tx:
        tx.execute("INSERT INTO a (id, note) VALUES (:id, :note)", {"id": 1, "note": "first"})
        tx.execute("INSERT INTO a (id, note) VALUES (:id, :note)", {"id": 1, "note": "again"})
    assert db.fetch_all("SELECT id FROM a") == []


def test_many_rows_of_one_insert_land_whole(db: PostgresReadDatabase) -> None:
    # Rows held and sent together, with literals, a repeated parameter and NULLs.
    count = 237
    with db.transaction() as tx:
        for n in range(count):
            tx.execute("INSERT INTO a (id, note) VALUES (:id, 'it''s (' || :note || ', ' || :note || ')')",
                       {"id": n, "note": None if n % 7 == 0 else f"n{n}"})
    rows = {r["id"]: r["note"] for r in db.fetch_all("SELECT id, note FROM a")}
    assert len(rows) == count
    assert rows[1] == "it's (n1, n1)" and rows[7] is None and rows[count - 1] == f"it's (n{count - 1}, n{count - 1})"


def test_do_nothing_keeps_the_first_row_of_a_key_and_upserts_apply_in_order(db: PostgresReadDatabase) -> None:
    with db.transaction() as tx:
        for at, n in enumerate((1, 2, 1, 3, 2)):  # keys repeated within what is sent together
            tx.execute("INSERT INTO a (id, note) VALUES (:id, :note) ON CONFLICT (id) DO NOTHING",
                       {"id": n, "note": f"at {at}"})
        for count in (1, 2, 3):  # the same key three times: each statement sees the one before
            tx.execute("INSERT INTO b (id, a_count) VALUES (:id, :count) ON CONFLICT (id) DO UPDATE"
                       " SET a_count = b.a_count + excluded.a_count", {"id": 9, "count": count})
    assert {r["id"]: r["note"] for r in db.fetch_all("SELECT id, note FROM a")} == {1: "at 0", 2: "at 1", 3: "at 3"}
    assert db.fetch_one("SELECT a_count FROM b WHERE id = 9") == {"a_count": 6}
    with db.transaction() as tx:  # an update ending in a parenthesis is still one statement per row
        for count in (1, 2):
            tx.execute("INSERT INTO b (id, a_count) VALUES (:id, :count) ON CONFLICT (id) DO UPDATE"
                       " SET a_count = coalesce(b.a_count * excluded.a_count, 0)", {"id": 9, "count": count + 1})
    assert db.fetch_one("SELECT a_count FROM b WHERE id = 9") == {"a_count": 36}


def test_rows_sent_together_keep_every_value_as_written(db: PostgresReadDatabase) -> None:
    # Rows of one INSERT go to PostgreSQL as one statement over JSON: each type must come back
    # exactly as a row-at-a-time INSERT would have stored it, NaN and infinity included.
    with db.transaction() as tx:
        tx.execute("CREATE TABLE c (id uuid PRIMARY KEY, at timestamptz, score double precision, ok boolean,"
                   " n bigint, note text, state text DEFAULT 'new', made_at timestamptz)")
    when = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
    rows = [{"id": uuid4(), "at": when + timedelta(hours=n), "score": n / 3, "ok": n % 2 == 0, "n": 2**40 + n,
             "note": None if n == 3 else f"it's \"{n}\" 100% ünïcode\n{{\"json\": [{n}]}}"} for n in range(7)]
    rows[5]["at"] = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    odd = [{**rows[0], "id": uuid4(), "score": float("nan")}, {**rows[0], "id": uuid4(), "score": float("inf")}]
    with db.transaction() as tx:
        for row in rows + odd:
            tx.execute("INSERT INTO c (id, at, score, ok, n, note, made_at) VALUES (:id, :at, :score, :ok, :n, :note,"
                       " :at) ON CONFLICT (id) DO NOTHING", row)
    stored = {r["id"]: r for r in db.fetch_all("SELECT * FROM c")}
    assert len(stored) == len(rows) + 2
    for row in rows:
        got = stored[row["id"]]
        assert (got["at"], got["score"], got["ok"], got["n"], got["note"]) == (
            row["at"], row["score"], row["ok"], row["n"], row["note"])
        assert got["made_at"] == row["at"] and got["state"] == "new"  # repeated placeholder, column default
    assert stored[odd[0]["id"]]["score"] != stored[odd[0]["id"]]["score"]  # NaN, not NULL
    assert stored[odd[1]["id"]]["score"] == float("inf")


def test_a_lookup_planned_now_is_never_prepared_so_no_plan_outlives_the_table_it_was_made_for() -> None:
    # psycopg prepares a statement on its fifth run on a connection, and PostgreSQL may then keep
    # a generic plan made while a new table was small. `plan_now` lookups are planned at each run.
    with fresh_postgres_database() as url:
        db = PostgresReadDatabase(url, min_size=1, max_size=1)  # one connection: every run on it
        try:
            for _ in range(8):
                db.fetch_one("SELECT 1 AS usual WHERE 1 = :x", {"x": 1})
                assert db.fetch_one("SELECT 2 AS now WHERE 1 = :x", {"x": 1}, plan_now=True) == {"now": 2}
                assert db.fetch_tuples("SELECT 3 WHERE 1 = :x", {"x": 1}, plan_now=True) == [(3,)]
            prepared = [row["statement"] for row in db.fetch_all("SELECT statement FROM pg_prepared_statements")]
        finally:
            db.close()
    assert any("AS usual" in statement for statement in prepared)  # what happens to the others
    assert not any("AS now" in statement or "SELECT 3" in statement for statement in prepared)
