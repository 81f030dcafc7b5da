"""The files source reads only what really lies under MEMORIA_FILES_ROOTS: NUL bytes and
paths outside the roots are refused when the source is connected, symlinks leading out are
skipped at sync, odd files never hang it, and a folder that vanished fails the run cleanly
(the worker keeps going). Real files, real symlinks, a real server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import GraphQLClient, RunningServer
from worker_support import eventually, fast_settings, start_app

from domain.errors import BadUserInput
from domain.sources import DataSource, SourceKind, SourceStatus
from memoria.settings import Settings
from providers.connectors.folder import FileRefused, FolderConnector

CONNECT = """mutation($c: JSON) { connectSource(type: "files", config: $c) {
  source { id status } } }"""
SYNC = "mutation($id: ID!) { syncSource(id: $id) { id } }"
RUN = "query($id: ID!) { syncRun(id: $id) { status itemsAdded error } }"
SEARCH = """query($q: String!) { searchMemories(query: $q, topK: 20) { memory { content } } }"""


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """``root`` (readable) with notes, a link to a secret outside it, a link to a folder
    outside it, a link that stays inside, and a FIFO; ``outside`` with the secret."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "notes" / "deep").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("the server's secret")
    (root / "notes" / "a.txt").write_text("alpha note")
    (root / "notes" / "deep" / "b.md").write_text("# beta note")
    (root / "notes" / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "notes" / "outside-dir").symlink_to(outside, target_is_directory=True)
    (root / "notes" / "alias.txt").symlink_to(root / "notes" / "a.txt")
    os.mkfifo(root / "notes" / "pipe.txt")
    return root, outside


def _source(path: str) -> DataSource:
    return DataSource(
        id="s1",
        user_id="u1",
        kind=SourceKind.FILES,
        name="files",
        status=SourceStatus.CONNECTED,
        config={"path": path},
        credentials_encrypted=None,
        cursor={},
        field_id=None,
        item_count=0,
        created_at=datetime.now(UTC),
    )


async def _texts(connector: FolderConnector, path: str) -> dict[str, str]:
    batches = [b async for b in connector.fetch(source=_source(path), credentials={}, cursor={})]
    return {d.title: d.text for b in batches for d in b.documents}


async def test_sync_reads_inside_and_skips_links_leading_out(tree: tuple[Path, Path]) -> None:
    root, _outside = tree
    texts = await _texts(FolderConnector(roots=(str(root),)), str(root / "notes"))
    assert texts == {
        "a.txt": "alpha note",
        "alias.txt": "alpha note",  # a link that stays under the root is fine
        "deep/b.md": "# beta note",
    }
    assert all("secret" not in text for text in texts.values())


def test_bad_paths_refused_when_connected(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    connector = FolderConnector(roots=(str(root),))
    for path, problem in (
        (f"{root}/notes\x00/etc/passwd", "NUL"),
        (str(outside), "outside the folders"),
        (f"{root}/../outside", "outside the folders"),
        (str(root / "notes" / "outside-dir"), "outside the folders"),  # a link leading out
        (str(root / "notes" / "leak.txt"), "outside the folders"),
        (str(root / "missing"), "does not exist"),
        ("", "required"),
    ):
        with pytest.raises(BadUserInput, match=problem):
            connector.check_path(path)
    assert connector.check_path(str(root / "notes")) == (root / "notes").resolve()


async def test_nul_path_stored_earlier_fails_the_fetch_cleanly(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with pytest.raises(BadUserInput, match="NUL"):
        await _texts(FolderConnector(roots=(str(root),)), f"{root}/notes\x00x")


def test_link_swapped_in_after_listing_is_refused(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    connector = FolderConnector(roots=(str(root),))
    listed = root / "notes" / "deep" / "b.md"
    assert connector.read_contained(listed)[0] == b"# beta note"
    # The folder is replaced by a link to the outside, holding a file of the same name.
    (root / "notes" / "deep" / "b.md").unlink()
    (root / "notes" / "deep").rmdir()
    (outside / "b.md").write_text("outside")
    (root / "notes" / "deep").symlink_to(outside, target_is_directory=True)
    with pytest.raises(FileRefused, match="outside"):
        connector.read_contained(listed)
    with pytest.raises(FileRefused, match="regular file"):
        connector.read_contained(root / "notes" / "pipe.txt")  # opened without blocking


@pytest.fixture
async def files_server(settings: Settings, tree: tuple[Path, Path]) -> AsyncIterator[RunningServer]:
    root, _ = tree
    running = await start_app(fast_settings(settings, files_roots=(str(root),)))
    try:
        yield running
    finally:
        await running.stop()


async def _run(client: GraphQLClient, source_id: str) -> dict[str, Any]:
    run = (await client.data(SYNC, {"id": source_id}))["syncSource"]["id"]
    done = await eventually(
        lambda: client.data(RUN, {"id": run}),
        accept=lambda r: r["syncRun"]["status"] in ("succeeded", "failed"),
    )
    result: dict[str, Any] = done["syncRun"]
    return result


async def test_files_source_end_to_end(
    files_server: RunningServer, tree: tuple[Path, Path]
) -> None:
    root, outside = tree
    alice = await GraphQLClient(files_server.url).register("alice")
    for path in (f"{root}/notes\x00", str(outside), str(root / "notes" / "leak.txt")):
        refused = await alice.error(CONNECT, {"c": {"path": path}})
        assert refused.code == "BAD_USER_INPUT", path

    (root / "gone").mkdir()
    (root / "gone" / "x.txt").write_text("soon gone")
    doomed = (await alice.data(CONNECT, {"c": {"path": str(root / "gone")}}))["connectSource"]
    (root / "gone" / "x.txt").unlink()
    (root / "gone").rmdir()
    failed = await _run(alice, doomed["source"]["id"])
    assert failed["status"] == "failed"
    assert "does not exist" in failed["error"]

    # The worker is still there: the next sync runs, and the leaked secret is not stored.
    notes = (await alice.data(CONNECT, {"c": {"path": str(root / "notes")}}))["connectSource"]
    done = await _run(alice, notes["source"]["id"])
    assert (done["status"], done["itemsAdded"], done["error"]) == ("succeeded", 3, None)
    hits = (await alice.data(SEARCH, {"q": "secret"}))["searchMemories"]
    contents = [h["memory"]["content"] for h in hits]
    assert contents  # the three notes are stored and searchable
    assert all("the server's secret" not in c for c in contents)
