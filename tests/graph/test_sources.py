"""Data sources against fake GitHub, Slack, Notion and OAuth servers over real HTTP on
loopback and a real IMAP exchange: OAuth connect, background syncs with pagination,
rate-limit answers and a token expiring mid-sync; re-syncs add nothing twice."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conftest import GraphQLClient, RunningServer
from fake_cloud import FakeCloud, issue
from imap_server import ImapServer, Mailbox
from worker_support import eventually

CONNECT = """mutation($t: String!, $c: JSON) { connectSource(type: $t, config: $c) {
  oauthUrl source { id type status config itemCount } } }"""
SYNC = "mutation($id: ID!) { syncSource(id: $id) { id status } }"
RUN = (
    """query($id: ID!) { syncRun(id: $id) { status itemsAdded itemsUpdated itemsSkipped error } }"""
)
SOURCE = "query($id: ID!) { source(id: $id) { status itemCount lastSync lastError } }"
STATS = "{ stats { totalMemories bySource { key count } lastSync sourceCount } }"


async def _sync(client: GraphQLClient, source_id: str) -> dict[str, Any]:
    run = (await client.data(SYNC, {"id": source_id}))["syncSource"]
    assert run["status"] == "queued"  # the request only queues; the worker syncs
    done = await eventually(
        lambda: client.data(RUN, {"id": run["id"]}),
        accept=lambda r: r["syncRun"]["status"] in ("succeeded", "failed"),
    )
    result: dict[str, Any] = done["syncRun"]
    return result


async def _counts(client: GraphQLClient) -> dict[str, int]:
    stats = (await client.data(STATS))["stats"]
    return {e["key"]: e["count"] for e in stats["bySource"]}


async def test_github_oauth_then_incremental_syncs(
    cloud_app: RunningServer, cloud: tuple[FakeCloud, str]
) -> None:
    fake, url = cloud
    alice = await GraphQLClient(cloud_app.url).register("alice")
    connected = (await alice.data(CONNECT, {"t": "github", "c": {"repos": ["acme/app"]}}))[
        "connectSource"
    ]
    source = connected["source"]
    assert source["status"] == "pending_auth"
    link = urlsplit(connected["oauthUrl"])
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{url}/oauth/authorize"
    query = parse_qs(link.query)
    assert query["client_id"] == ["cid"]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"][0].endswith("/api/sources/oauth/callback")
    state = query["state"][0]

    early = await alice.error(SYNC, {"id": source["id"]})
    assert early.code == "BAD_USER_INPUT"
    complete = (
        "mutation($c: String!, $s: String!) { completeSourceOAuth(code: $c, state: $s) { status } }"
    )
    # The last hex digit of the signature, changed (an "00" ending was the real one 1 in 256).
    forged_state = state[:-1] + ("1" if state.endswith("0") else "0")
    forged = await alice.error(complete, {"c": "good-code", "s": forged_state})
    assert forged.code == "BAD_USER_INPUT"
    done = await alice.data(complete, {"c": "good-code", "s": state})
    assert done["completeSourceOAuth"]["status"] == "connected"
    replay = await alice.error(complete, {"c": "good-code", "s": state})
    assert replay.code == "BAD_USER_INPUT"

    fake.expire_after_calls = 2  # the token dies after the second page of issues
    run = await _sync(alice, source["id"])
    assert run["status"] == "succeeded", run
    assert fake.refreshes == 1, "the expired token was refreshed mid-sync"
    assert "github" in fake.rate_limited, "a 429 answer was waited out"
    assert run["itemsAdded"] == 4  # three issues/PRs (two pages) and one comment
    assert await _counts(alice) == {"github": 4}
    status = (await alice.data(SOURCE, {"id": source["id"]}))["source"]
    assert status["status"] == "idle"
    assert status["itemCount"] == 4
    assert status["lastSync"]

    field = (await alice.data("{ memoryFields { id name } }"))["memoryFields"][0]
    assert field["name"] == "sources"
    hits = (
        await alice.data(
            """query($f: ID!) { searchMemories(fieldId: $f, query: "caching API layer", topK: 1) {
                 memory { content source occurredAt metadata } } }""",
            {"f": field["id"]},
        )
    )["searchMemories"]
    memory = hits[0]["memory"]
    assert memory["source"] == "github"
    assert memory["content"].startswith("PR acme/app#2")
    assert memory["metadata"]["url"] == "https://github.example/acme/app/issues/2"
    assert memory["occurredAt"].startswith("2025-01-02")

    again = await _sync(alice, source["id"])
    assert (again["itemsAdded"], again["itemsUpdated"]) == (0, 0)
    assert await _counts(alice) == {"github": 4}

    fake.issues[0] = issue(1, "2025-01-06T10:00:00Z", body="Fixed by pinning the toolchain.")
    fake.issues.append(issue(4, "2025-01-07T10:00:00Z"))
    third = await _sync(alice, source["id"])
    assert (third["itemsAdded"], third["itemsUpdated"]) == (1, 1)
    assert await _counts(alice) == {"github": 5}
    stats = (await alice.data(STATS))["stats"]
    assert stats["sourceCount"] == 1
    assert stats["lastSync"]


async def test_slack_and_notion_with_tokens(
    cloud_app: RunningServer, cloud: tuple[FakeCloud, str]
) -> None:
    fake, _ = cloud
    alice = await GraphQLClient(cloud_app.url).register("alice")
    slack = (
        await alice.data(
            CONNECT, {"t": "slack", "c": {"channels": ["C1"], "token": "static-token"}}
        )
    )["connectSource"]
    assert slack["oauthUrl"] is None
    assert slack["source"]["status"] == "connected"
    assert "token" not in slack["source"]["config"], "credentials are never returned"
    notion = (await alice.data(CONNECT, {"t": "notion", "c": {"token": "static-token"}}))[
        "connectSource"
    ]["source"]

    assert (await _sync(alice, slack["source"]["id"]))["itemsAdded"] == 3
    assert (await _sync(alice, notion["id"]))["itemsAdded"] == 2
    assert {"slack", "notion"} <= set(fake.rate_limited)
    assert await _counts(alice) == {"notion": 2, "slack": 3}

    fake.slack.append({"ts": "1700000099.000100", "user": "U2", "text": "One more note"})
    assert (await _sync(alice, slack["source"]["id"]))["itemsAdded"] == 1
    assert (await _sync(alice, notion["id"]))["itemsAdded"] == 0
    assert await _counts(alice) == {"notion": 2, "slack": 4}

    bob = await GraphQLClient(cloud_app.url).register("bob")
    assert (await bob.data("{ sources { id } }"))["sources"] == []
    denied = await bob.error(SYNC, {"id": notion["id"]})
    assert denied.code == "NOT_FOUND"


async def test_email_over_imap(cloud_app: RunningServer) -> None:
    mailbox = Mailbox()
    mailbox.add(
        1,
        subject="Quarterly plan",
        body="We agreed to ship v2 in March.",
        date="Mon, 13 Jan 2025 09:30:00 +0000",
    )
    mailbox.add(2, subject="Lunch", body="Tapas on Friday?", date="Tue, 14 Jan 2025 12:00:00 +0000")
    imap = await ImapServer(mailbox).start()
    try:
        alice = await GraphQLClient(cloud_app.url).register("alice")
        config = {
            "host": "127.0.0.1",
            "port": imap.port,
            "ssl": False,
            "username": mailbox.user,
            "password": mailbox.password,
        }
        source = (await alice.data(CONNECT, {"t": "email", "c": config}))["connectSource"]["source"]
        assert "password" not in source["config"]
        assert (await _sync(alice, source["id"]))["itemsAdded"] == 2
        assert (await _sync(alice, source["id"]))["itemsAdded"] == 0
        mailbox.add(
            3,
            subject="Re: Quarterly plan",
            body="March it is.",
            date="Wed, 15 Jan 2025 08:00:00 +0000",
        )
        assert (await _sync(alice, source["id"]))["itemsAdded"] == 1
        assert await _counts(alice) == {"email": 3}
        field = (await alice.data("{ memoryFields { id } }"))["memoryFields"][0]["id"]
        hit = (
            await alice.data(
                """query($f: ID!) { searchMemories(fieldId: $f, query: "ship v2 March", topK: 1) {
                     memory { content occurredAt metadata } } }""",
                {"f": field},
            )
        )["searchMemories"][0]["memory"]
        assert "Quarterly plan" in hit["content"]
        assert hit["occurredAt"].startswith("2025-01-13T09:30")
        mailbox.password = "rotated"  # a test credential
        failed = await _sync(alice, source["id"])
        assert failed["status"] == "failed"
        assert "IMAP" in failed["error"]
        status = (await alice.data(SOURCE, {"id": source["id"]}))["source"]
        assert status["status"] == "error"
        assert status["lastError"]
    finally:
        await imap.stop()


def _pdf(text: str) -> bytes:
    """A minimal one-page PDF with ``text`` drawn in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


async def test_uploaded_files_and_sync_rate_limit(cloud_app: RunningServer) -> None:
    alice = await GraphQLClient(cloud_app.url).register("alice")
    source = (await alice.data(CONNECT, {"t": "files", "c": {}}))["connectSource"]["source"]
    upload = """mutation($s: ID!, $n: String!, $b: String!) {
      uploadSourceFile(sourceId: $s, name: $n, contentBase64: $b) }"""
    long_text = "\n\n".join(
        f"Paragraph {i}: " + "the cache warms up slowly. " * 12 for i in range(12)
    )
    files = {
        "notes.txt": b"Buy a new keyboard.",
        "guide.md": long_text.encode(),
        "page.html": b"<html><head><title>t</title><script>x()</script></head>"
        b"<body><p>Office Wi-Fi password rotates monthly.</p></body></html>",
        "report.pdf": _pdf("Revenue grew nine percent"),
    }
    for name, data in files.items():
        await alice.data(
            upload, {"s": source["id"], "n": name, "b": base64.b64encode(data).decode()}
        )
    bad = await alice.error(upload, {"s": source["id"], "n": "x.exe", "b": "!!"})
    assert bad.code == "BAD_USER_INPUT"

    run = await _sync(alice, source["id"])
    assert run["status"] == "succeeded", run
    assert run["itemsAdded"] == 4
    total = (await alice.data(STATS))["stats"]["totalMemories"]
    assert total > 4, "the long Markdown file was chunked into several memories"
    field = (await alice.data("{ memoryFields { id } }"))["memoryFields"][0]["id"]
    for query, expected in (
        ("Revenue grew", "Revenue grew nine percent"),
        ("Wi-Fi password", "Office Wi-Fi password rotates monthly."),
    ):
        hit = (
            await alice.data(
                """query($f: ID!, $q: String!) { searchMemories(fieldId: $f, query: $q, topK: 1) {
                     memory { content } } }""",
                {"f": field, "q": query},
            )
        )["searchMemories"][0]["memory"]["content"]
        assert expected in hit
        assert "x()" not in hit

    second = await _sync(alice, source["id"])
    assert (second["itemsAdded"], second["itemsUpdated"], second["itemsSkipped"]) == (0, 0, 4)
    assert (await alice.data(STATS))["stats"]["totalMemories"] == total

    # Ten sync requests a minute per user; the eleventh is refused.
    for _ in range(8):
        await alice.data(SYNC, {"id": source["id"]})
    limited = await alice.error(SYNC, {"id": source["id"]})
    assert limited.code == "RATE_LIMITED"
