"""Memoria's PostgreSQL connections plan with a random page read priced for cache and SSD,
unless the server, the database or the role sets that price itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from persistence.database import Database


async def _random_page_cost(url: str) -> str:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return str((await conn.execute(text("SHOW random_page_cost"))).scalar_one())
    finally:
        await db.dispose()


async def test_the_default_price_is_replaced(pg_server: Any) -> None:
    assert await _random_page_cost(pg_server.url(pg_server.create_database())) == "1.1"


async def test_an_operators_price_is_kept(pg_server: Any) -> None:
    name = pg_server.create_database()
    pg_server.server.psql(f"ALTER DATABASE {name} SET random_page_cost = 2.5;")
    assert await _random_page_cost(pg_server.url(name)) == "2.5"
