"""``memoria export`` / ``import`` / ``reindex`` on both storage backends: data written
through the real services survives a round trip into a fresh database unchanged (ids,
contents, vectors, metadata, times), search finds the same hits, a re-import changes
nothing, an interrupted import finishes on a re-run, a bad line names itself and leaves its
batch unwritten, and reindex restores search after the index files are gone."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from cli_support import Cli, deployment_env
from sqlalchemy import select

from domain.entities import Actor, Role, new_id
from domain.memory_drafts import MemoryDraft, MemoryPatchInput
from domain.patterns import Pattern, PatternKind, PatternStatus, PatternTrigger, TriggerType
from domain.ports import Vector
from memoria.bootstrap import migrate
from memoria.cli.common import load_settings
from memoria.runtime import Runtime, build_runtime
from memoria.settings import Settings
from memoria.transfer.export import ExportError, export_jsonl
from memoria.transfer.importer import Importer, ImportReport
from memoria.transfer.indexes import hnsw_deferred
from memoria.transfer.jsonl import open_input, open_output
from memoria.transfer.records import BY_NAME, RecordError, decode, encode
from memoria.transfer.reindex import reindex
from persistence.tables.conversations import conversations
from persistence.tables.memories import memories
from providers.embedders.hashing import HashingEmbedder

PICTURE = bytes(range(256)) * 9 + b"\x00\xff harbour"  # every byte value, and then some
TOPICS = ["kettle", "violin", "glacier", "saffron", "harbour", "lantern", "orchid", "tundra"]
QUERIES = ["violin code qaxb", "saffron code qbxr", "what about qcxd"]


def _code(i: int) -> str:
    """A word only memory ``i`` holds, so each query has one right answer."""
    return f"q{chr(97 + i // 26 % 26)}x{chr(97 + i % 26)}"


class RenamedHashing(HashingEmbedder):
    """The hashing embedder under another name: a deployment with a different model."""

    @property
    def name(self) -> str:
        return "hashing-renamed"

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]:
        return [np.roll(np.asarray(v), 1) for v in await super().embed(texts)]


@dataclass
class Seeded:
    actor: Actor
    fields: list[str]


@pytest.fixture
def target_settings(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """A second, empty deployment on the same backend."""
    if settings.is_sqlite:
        url = f"sqlite+aiosqlite:///{tmp_path / 'target.db'}"
    else:
        pg = request.getfixturevalue("pg_server")
        url = pg.url(pg.create_database())
    return settings.with_(database_url=url, data_dir=tmp_path / "target-data")


async def _runtime(settings: Settings, embedder: HashingEmbedder | None = None) -> Runtime:
    runtime = build_runtime(settings, embedder=embedder or HashingEmbedder())
    await migrate(runtime.db)
    return runtime


@pytest.fixture
async def source(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = await _runtime(settings)
    yield runtime
    await runtime.aclose()


async def _seed(runtime: Runtime, username: str = "alice", memories: int = 240) -> Seeded:
    deps = runtime.deps
    async with runtime.db.unit_of_work() as uow:
        user = (
            await deps.auth.register(
                uow=uow, username=username, email=f"{username}@example.com", password="pw-123456789"
            )
        ).user
        actor = Actor(user_id=user.id, role=Role.USER, via="jwt")
        notes = await deps.fields.create(uow=uow, actor=actor, name="notes")
        chat = await deps.fields.create(uow=uow, actor=actor, name="chat")
        await uow.commit()
    start = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    facts = [
        MemoryDraft(
            content=f"{TOPICS[i % 8]} beside the {TOPICS[(i * 3) % 8]}, code {_code(i)}",
            tags=[TOPICS[i % 8]],
            metadata={"n": i, "nested": {"even": i % 2 == 0}},
            occurred_at=start + timedelta(hours=i),
        )
        for i in range(memories)
    ]
    turns = [
        MemoryDraft(
            content=f"shall we talk about the {TOPICS[i % 8]}, {_code(i + 400)}?",
            kind="message",
            speaker=["Ana", "Ben"][i % 2],
            occurred_at=start + timedelta(minutes=i),
        )
        for i in range(40)
    ]
    for field_id, drafts in ((notes.id, facts), (chat.id, turns)):
        for i in range(0, len(drafts), 100):
            async with runtime.db.unit_of_work() as uow:
                await deps.memories.add_many(
                    uow=uow, actor=actor, field_id=field_id, drafts=drafts[i : i + 100]
                )
                await uow.commit()
    async with runtime.db.unit_of_work() as uow:
        # The search also loads the field's vector index, so it is saved with the runtime.
        hit = (
            await deps.memories.search(uow=uow, actor=actor, field_ids=[notes.id], query="violin")
        )[0]
        patch = MemoryPatchInput(content=hit.memory.content + " (edited)", importance=0.9)
        await deps.memories.update(uow=uow, actor=actor, memory_id=hit.memory.id, patch=patch)
        talk = await deps.conversations.create(
            uow=uow, actor=actor, title="Trip", tags=["travel"], field_id=chat.id
        )
        for i in range(5):
            said = await deps.conversations.add_message(
                uow=uow, actor=actor, conversation_id=talk.id, role="user", content=f"hello {i}"
            )
        # Uploaded bytes (kept in the blob store) and a file only referred to by its path.
        await deps.attachments.upload(
            uow=uow,
            actor=actor,
            message_id=said.id,
            file_type="image/png",
            data=PICTURE,
            filename="harbour.png",
        )
        await deps.attachments.add_reference(
            uow=uow, actor=actor, message_id=said.id, file_type="text/plain", file_path="/notes/a"
        )
        await uow.patterns.add(
            Pattern(
                id=new_id(),
                user_id=actor.user_id,
                kind=PatternKind.PREFERENCE,
                slot="drink",
                value="green tea",
                polarity=1,
                name="likes green tea",
                description="Prefers green tea",
                triggers=[PatternTrigger(TriggerType.KEYWORD, "tea", 0.0)],
                evidence=[],
                confidence=0.8,
                usage_count=2,
                last_used=None,
                status=PatternStatus.ACTIVE,
                created_at=start,
                updated_at=start,
                vector=[0.5, -0.25],
            )
        )
        await uow.commit()
    return Seeded(actor=actor, fields=[notes.id, chat.id])


async def _export(runtime: Runtime, path: Path, users: Sequence[str] = ()) -> list[dict]:  # type: ignore[type-arg]
    with open_output(str(path)) as out:
        await export_jsonl(
            runtime.db, out, embedder=runtime.deps.memories.embedder, usernames=users, quiet=True
        )
    text = await asyncio.to_thread(path.read_text)
    return [json.loads(line) for line in text.splitlines()]


async def _import(runtime: Runtime, path: Path, batch_size: int = 500) -> ImportReport:
    importer = Importer(
        runtime.db,
        embedder=runtime.deps.memories.embedder,
        renames={},
        batch_size=batch_size,
        quiet=True,
    )
    with open_input(str(path)) as (stream, size):
        return await importer.run(stream, size)


async def _top_hits(runtime: Runtime, actor: Actor, field_id: str) -> list[str]:
    async with runtime.db.unit_of_work() as uow:
        return [
            (
                await runtime.deps.memories.search(
                    uow=uow, actor=actor, field_ids=[field_id], query=q
                )
            )[0].memory.id
            for q in QUERIES
        ]


async def _pg_indexes(runtime: Runtime) -> set[str]:
    async with runtime.db.engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'memories'"
        )
        return {row.indexname for row in rows}


async def _uploaded(runtime: Runtime, actor: Actor) -> list[bytes]:
    """The bytes of every uploaded attachment of ``actor``'s conversations."""
    deps = runtime.deps
    async with runtime.db.engine.connect() as conn:
        talks = (
            await conn.execute(
                select(conversations.c.id).where(conversations.c.user_id == actor.user_id)
            )
        ).scalars()
        talk_ids = list(talks)
    async with runtime.db.unit_of_work() as uow:
        attached = await uow.attachments.for_conversations(talk_ids, user_id=actor.user_id)
        return [
            await deps.attachments.content(uow=uow, actor=actor, attachment=a)
            for a in attached
            if a.sha256 is not None
        ]


def _body(records: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in records if r["type"] != "header"]


async def test_round_trip_resume_and_reimport(
    source: Runtime, target_settings: Settings, tmp_path: Path
) -> None:
    seeded = await _seed(source)
    exported = await _export(source, tmp_path / "all.jsonl")
    header, end = exported[0], exported[-1]
    assert (header["format"], header["version"]) == ("memoria-export", 1)
    assert header["embedder"] == source.deps.memories.embedder.name
    async with source.db.unit_of_work() as uow:
        stored = await uow.memories.count(user_id=seeded.actor.user_id)
    assert stored > 250  # a few restated facts merged at ingest
    assert end["counts"]["memory_change"] >= stored  # an ADD each, an UPDATE per merge and edit
    assert dict(end["counts"], memory_change=0) == {
        "user": 1, "blob": 1, "field": 2, "memory": stored, "memory_change": 0,
        "conversation": 1, "message": 5, "attachment": 2, "pattern": 1, "pattern_change": 0,
    }  # fmt: skip
    user = next(r for r in exported if r["type"] == "user")
    assert not {"password_hash", "mfa_secret", "balance_micros"} & set(user)
    memory = next(r for r in exported if r["type"] == "memory" and r["kind"] == "message")
    assert memory["speaker"] in ("Ana", "Ben")
    assert memory["embedder"] == header["embedder"]
    assert memory["turn_seq"] is not None
    assert len(memory["vector"]) > 100

    # An export cut short (a killed run, a partial copy), imported, then the whole file.
    lines = (tmp_path / "all.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_text("".join(lines[:140]))  # mid-memories
    target = await _runtime(target_settings)
    try:
        cut = await _import(target, tmp_path / "cut.jsonl")
        assert not cut.complete
        assert 0 < cut.imported["memory"] < stored
        # PostgreSQL: without the HNSW index meanwhile, built once at the end.
        dimension = target.deps.memories.embedder.dimension
        async with hnsw_deferred(target.db, dimension):
            full = await _import(target, tmp_path / "all.jsonl")
        if not target_settings.is_sqlite:
            assert f"ix_memories_hnsw_{dimension}" in await _pg_indexes(target)
        assert full.complete
        assert full.reembedded == 0
        assert full.imported["memory"] + cut.imported["memory"] == stored
        assert full.skipped["memory"] == cut.imported["memory"]
        # Everything is as it was: ids, contents, vectors, metadata, times, turn order.
        assert _body(await _export(target, tmp_path / "copy.jsonl")) == _body(exported)
        assert await _top_hits(target, seeded.actor, seeded.fields[0]) == await _top_hits(
            source, seeded.actor, seeded.fields[0]
        )
        assert await _uploaded(target, seeded.actor) == [PICTURE]
        again = await _import(target, tmp_path / "all.jsonl")
        assert sum(again.imported.values()) == 0
        assert sum(again.skipped.values()) == sum(end["counts"].values())
        assert _body(await _export(target, tmp_path / "copy.jsonl")) == _body(exported)
    finally:
        await target.aclose()


async def _vector_hits(runtime: Runtime, field_id: str) -> set[str]:
    """Every memory the runtime's vector search reaches in the field."""
    async with runtime.db.unit_of_work() as uow:
        hits = await uow.vectors.search(field_id=field_id, vector=[1.0] + [0.0] * 255, k=10_000)
    return {memory_id for memory_id, _ in hits}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_server_running_beside_a_postgres_import_finds_what_it_imported(
    source: Runtime, target_settings: Settings, tmp_path: Path
) -> None:
    seeded = await _seed(source, memories=60)
    await _export(source, tmp_path / "all.jsonl")
    lines = (tmp_path / "all.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_text("".join(lines[:40]))  # mid-memories
    server, importing = await _runtime(target_settings), await _runtime(target_settings)
    assert server.fanout is not None
    server.fanout.start()
    try:
        await asyncio.wait_for(server.fanout.listening.wait(), 5)
        await _import(importing, tmp_path / "cut.jsonl")
        field_id = seeded.fields[0]
        part = await _vector_hits(server, field_id)  # and the server's copy loads
        assert server.db.faiss is not None
        await server.db.faiss.settled()
        assert server.db.faiss.loaded(field_id) is not None
        await _import(importing, tmp_path / "all.jsonl")
        async with source.db.engine.connect() as conn:
            stored = await conn.execute(
                select(memories.c.id).where(memories.c.field_id == field_id)
            )
            every = {row.id for row in stored}
        for _ in range(250):  # the import's notes reach the server within milliseconds
            if await _vector_hits(server, field_id) == every:
                break
            await asyncio.sleep(0.02)
        assert part < await _vector_hits(server, field_id) == every
    finally:
        await server.fanout.aclose()
        await server.aclose()
        await importing.aclose()


async def test_bad_line_names_itself_and_leaves_its_batch_unwritten(
    source: Runtime, target_settings: Settings, tmp_path: Path
) -> None:
    await _seed(source, memories=30)
    lines = await _export_lines(source, tmp_path)
    lines[24] = lines[24].replace('"content":', '"content":7,"x":')  # line 25: content a number
    (tmp_path / "bad.jsonl").write_text("".join(lines))
    target = await _runtime(target_settings)
    try:
        with pytest.raises(RecordError, match="line 25: content must be a string"):
            await _import(target, tmp_path / "bad.jsonl", batch_size=10)
        # Lines 2-21 (two batches) were committed; 22-24 shared the bad line's batch.
        kept = (await _export(target, tmp_path / "partial.jsonl"))[-1]["counts"]
        assert sum(kept.values()) == 20
        lines[24] = "{not json\n"
        (tmp_path / "bad.jsonl").write_text("".join(lines))
        with pytest.raises(RecordError, match="line 25: not valid JSON"):
            await _import(target, tmp_path / "bad.jsonl", batch_size=10)
    finally:
        await target.aclose()


async def _export_lines(runtime: Runtime, tmp_path: Path) -> list[str]:
    await _export(runtime, tmp_path / "all.jsonl")
    return (tmp_path / "all.jsonl").read_text().splitlines(keepends=True)


async def test_other_embedder_reembeds_and_user_map_renames(
    source: Runtime, target_settings: Settings, tmp_path: Path
) -> None:
    await _seed(source, "alice", memories=20)
    await _seed(source, "bob", memories=5)
    with pytest.raises(ExportError, match="no user named 'zoe'"):
        await _export(source, tmp_path / "x.jsonl", users=["alice", "zoe"])
    only_alice = await _export(source, tmp_path / "alice.jsonl", users=["alice"])
    assert {r["username"] for r in only_alice if r["type"] == "user"} == {"alice"}
    target = await _runtime(target_settings, RenamedHashing())
    try:
        importer = Importer(
            target.db,
            embedder=target.deps.memories.embedder,
            renames={"alice": "carol"},
            quiet=True,
        )
        with open_input(str(tmp_path / "alice.jsonl")) as (stream, size):
            report = await importer.run(stream, size)
        assert report.created_users == ["carol"]
        assert report.reembedded == 60
        async with target.db.unit_of_work() as uow:
            carol = await uow.users.by_login("carol")
            assert carol is not None
            assert carol.password_hash.startswith("!")
            fields = await uow.fields.list(user_id=carol.id)
        assert {f.embedder for f in fields} == {"hashing-renamed"}
        actor = Actor(user_id=carol.id, role=Role.USER, via="jwt")
        notes = next(f.id for f in fields if f.name == "notes")
        async with target.db.unit_of_work() as uow:
            hits = await target.deps.memories.search(
                uow=uow, actor=actor, field_ids=[notes], query="violin"
            )
        assert "violin" in hits[0].memory.content
    finally:
        await target.aclose()


async def test_an_account_differing_only_in_case_receives_the_import(
    source: Runtime, target_settings: Settings, tmp_path: Path
) -> None:
    """Registration refuses "Alice" beside "alice"; an import must not create that pair."""
    await _seed(source, "alice", memories=5)
    await _export(source, tmp_path / "alice.jsonl", users=["alice"])
    target = await _runtime(target_settings)
    try:
        async with target.db.unit_of_work() as uow:
            registered = await target.deps.auth.register(
                uow=uow, username="Alice", email="a@example.org", password="pw-123456789"
            )
            await uow.commit()
        actor = Actor(user_id=registered.user.id, role=Role.USER, via="jwt")
        importer = Importer(
            target.db, embedder=target.deps.memories.embedder, renames={}, quiet=True
        )
        with open_input(str(tmp_path / "alice.jsonl")) as (stream, size):
            report = await importer.run(stream, size)
        assert report.created_users == []
        async with target.db.unit_of_work() as uow:
            accounts = await uow.users.list_all()
            notes = await uow.fields.by_name("notes", user_id=actor.user_id)
        assert [a.username for a in accounts if a.username.lower() == "alice"] == ["Alice"]
        assert notes is not None
        async with target.db.unit_of_work() as uow:
            hits = await target.deps.memories.search(
                uow=uow, actor=actor, field_ids=[notes.id], query="kettle"
            )
        assert hits
    finally:
        await target.aclose()


def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused() -> None:
    kind = BY_NAME["blob"]
    good = encode(
        kind,
        ("u1", hashlib.sha256(PICTURE).hexdigest(), len(PICTURE), PICTURE, datetime.now(UTC)),
    )
    assert decode(kind, good, 7)["data"] == PICTURE
    bad = dict(good, data=base64.b64encode(PICTURE[:-1] + b"?").decode())
    with pytest.raises(RecordError, match="line 7: blob data does not match"):
        decode(kind, bad, 7)
    with pytest.raises(RecordError, match="line 7: data is not valid base64"):
        decode(kind, dict(good, data="not base64!"), 7)


async def test_reindex_restores_search_without_index_files(
    settings: Settings, tmp_path: Path
) -> None:
    runtime = await _runtime(settings)
    seeded = await _seed(runtime, memories=60)
    before = await _top_hits(runtime, seeded.actor, seeded.fields[0])
    await runtime.aclose()  # saves the FAISS files (embedded mode)
    vectors = settings.data_dir / "vectors"
    if settings.is_sqlite:
        files = sorted(vectors.glob("*.faiss"))
        assert files
        for file in vectors.iterdir():
            file.unlink()
    runtime = await _runtime(settings)
    try:
        report = await reindex(runtime.db, embedder=runtime.deps.memories.embedder, quiet=True)
        assert (report.fields, report.lexical, report.reembedded) == (2, True, {})
        if settings.is_sqlite:
            assert all(file.exists() for file in files)  # and the never-searched field's
        assert await _top_hits(runtime, seeded.actor, seeded.fields[0]) == before
        report = await reindex(
            runtime.db,
            embedder=runtime.deps.memories.embedder,
            field_id=seeded.fields[0],
            re_embed=True,
            quiet=True,
        )
        assert (report.reembedded, report.lexical) == ({seeded.fields[0]: 60}, False)
        assert await _top_hits(runtime, seeded.actor, seeded.fields[0]) == before
    finally:
        await runtime.aclose()


# The command layer is the same on both backends (the functions it calls are covered on both
# above); each command builds a whole runtime, so once is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_commands(
    settings: Settings,
    target_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The three commands through ``memoria``'s own entry point, as an operator runs them."""
    source_env = deployment_env(
        settings.resolved_database_url, tmp_path / "src", default_sqlite=False
    )
    cli = Cli(source_env, monkeypatch, capsys)
    cli.ok("migrate")
    asyncio.run(_seed_with(load_settings()))
    out = tmp_path / "export.jsonl.gz"
    done = cli("export", "--out", str(out), "--quiet")
    assert (done.status, done.err.strip()) == (
        0,
        "exported 1 user, 1 blob, 2 field, 50 memory, 51 memory_change, 1 conversation, "
        "5 message, 2 attachment, 1 pattern",
    )
    assert out.stat().st_mode & 0o777 == 0o600
    with gzip.open(out) as packed:
        lines = packed.readlines()
    assert lines[0].startswith(b'{"type":"header"')
    on_stdout = cli("export", "--user", "alice")
    assert on_stdout.status == 0
    # The same records as the file (the header differs by its time only).
    assert on_stdout.out.encode().splitlines(keepends=True)[1:] == lines[1:]
    missing = cli("export", "--user", "zoe")
    assert (missing.status, missing.err) == (1, "memoria: no user named 'zoe'\n")

    target_env = deployment_env(
        target_settings.resolved_database_url, tmp_path / "dst", default_sqlite=False
    )
    cli = Cli(dict(target_env, MEMORIA_ADMIN_PASSWORD="admin-password-123"), monkeypatch, capsys)
    not_ready = cli("import", str(out))
    assert not_ready.status == 1
    assert "run `memoria migrate` first" in not_ready.err
    cli.ok("migrate")
    imported = cli.ok("import", str(out), "--quiet")
    assert imported.splitlines() == [
        "imported 1 user, 1 blob, 2 field, 50 memory, 51 memory_change, 1 conversation, "
        "5 message, 2 attachment, 1 pattern; skipped 0 records already here",
        "created accounts without a password (they cannot log in until one is set): alice",
    ]
    again = cli.ok("import", str(out), "--quiet")
    assert again.strip() == "imported nothing; skipped 114 records already here"
    assert cli.ok("reindex", "--quiet").strip() == "reindexed 2 fields; full-text index rebuilt"
    unknown = cli("reindex", "--field", "nope")
    assert (unknown.status, unknown.err) == (1, "memoria: no memory field with id 'nope'\n")
    bad_map = cli("import", str(out), "--user-map", "alice")
    assert bad_map.status == 2
    assert "expected OLD=NEW" in bad_map.err
    unreadable = cli("import", str(tmp_path / "missing.jsonl"))
    assert unreadable.status == 1
    assert "cannot read" in unreadable.err
    (tmp_path / "cut.jsonl").write_bytes(b"".join(lines[:30]))
    cut = cli("import", str(tmp_path / "cut.jsonl"))
    assert cut.status == 1
    assert "ends before its end record" in cut.err


async def _seed_with(settings: Settings) -> None:
    runtime = build_runtime(settings, embedder=HashingEmbedder())
    try:
        await _seed(runtime, memories=10)
    finally:
        await runtime.aclose()
