"""More requests at once than the database pool has connections: every one completes.

Each request holds its unit of work's connection while its budget is counted; on PostgreSQL
the counters live in the database, and counting on a second connection from the same pool
would let 30 waiting requests hold all 30 connections, each waiting for one more.
"""

from __future__ import annotations

import asyncio

from conftest import GraphQLClient

SEARCH = 'query { searchMemories(query: "where does my sister live") { score } }'
REQUESTS = 64  # the PostgreSQL pool holds 10 + 20 overflow connections


async def test_more_concurrent_requests_than_pooled_connections_all_complete(
    gql: GraphQLClient,
) -> None:
    alice = await gql.register("alice")
    async with asyncio.timeout(25):  # a pool wait gives up after 30 s: fail before that
        answers = await asyncio.gather(*(alice.post(SEARCH) for _ in range(REQUESTS)))
    assert [a.get("errors") for a in answers] == [None] * REQUESTS
