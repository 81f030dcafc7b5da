"""``memoria reindex``: the search indexes rebuilt from the database.

First every field whose vectors came from another embedder is re-embedded, as the server
does at start-up (all fields, or the one asked for, with ``re_embed``); then the
full-text index is rebuilt (unless only one field was asked for: it is one index for all
fields), then each field's vector index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.entities import MemoryField
from domain.ports import Embedder
from domain.services.reembed import ReembedService
from memoria.maintenance import prepare_embedder
from memoria.transfer.indexes import rebuild_lexical_index, rebuild_vector_index, reembed_field
from memoria.transfer.progress import progress_bar
from persistence.database import Database


class ReindexFailed(Exception):
    """A reindex that cannot run as asked (an unknown field, an unreachable embedder)."""


@dataclass
class ReindexReport:
    """What a reindex did."""

    fields: int = 0
    reembedded: dict[str, int] = field(default_factory=dict)  # field id -> memories
    lexical: bool = False


async def _fields(db: Database, only: str | None) -> list[MemoryField]:
    found: list[MemoryField] = []
    after = ""
    while True:
        async with db.unit_of_work() as uow:
            page = await uow.maintenance.fields_after(after_id=after, limit=500)
        if not page:
            break
        found.extend(f for f in page if only is None or f.id == only)
        after = page[-1].id
    if only is not None and not found:
        raise ReindexFailed(f"no memory field with id {only!r}")
    return found


async def reindex(
    db: Database,
    *,
    embedder: Embedder,
    field_id: str | None = None,
    re_embed: bool = False,
    quiet: bool = False,
) -> ReindexReport:
    fields = await _fields(db, field_id)
    stale = [f for f in fields if re_embed or f.embedder != embedder.name]
    if not await prepare_embedder(embedder, db) and stale:
        raise ReindexFailed(f"the embedder {embedder.name} cannot be reached; nothing re-embedded")
    report = ReindexReport(fields=len(fields))
    service = ReembedService(embedder=embedder)
    with progress_bar(total=len(stale), unit="field", description="re-embed", quiet=quiet) as bar:
        for memory_field in stale:
            report.reembedded[memory_field.id] = await reembed_field(db, service, memory_field.id)
            bar.update(1)
    if field_id is None:
        await rebuild_lexical_index(db)
        report.lexical = True
    with progress_bar(total=len(fields), unit="field", description="index", quiet=quiet) as bar:
        for memory_field in fields:
            await rebuild_vector_index(db, memory_field.id)
            bar.update(1)
    return report
