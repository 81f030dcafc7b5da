"""What a transaction changed, for what is kept in process memory beside the database."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.ports import Vector
from persistence.turn_store import TurnChange


@dataclass
class IndexJournal:
    """Changes of one transaction for the in-process indexes (vectors, keywords, turn
    order), applied only after commit so a rollback never leaves an entry behind: (field,
    memory, vector) and (field, memory, text) upserts, (field, memory) deletes, and (field,
    turn change) for the turn order (see ``persistence.turn_store.TurnChange``)."""

    upserts: list[tuple[str, str, Vector]] = field(default_factory=list)
    texts: list[tuple[str, str, str]] = field(default_factory=list)
    deletes: list[tuple[str, str]] = field(default_factory=list)
    turns: list[tuple[str, TurnChange]] = field(default_factory=list)
    # Fields re-embedded (their vectors all changed at once) or deleted: their copies in
    # process memory start over.
    dropped: set[str] = field(default_factory=set)

    def clear(self) -> None:
        self.upserts.clear()
        self.texts.clear()
        self.deletes.clear()
        self.turns.clear()
        self.dropped.clear()

    def changed_fields(self) -> set[str]:
        """The fields whose memories were added, rewritten or deleted."""
        return (
            {f for f, _, _ in self.upserts}
            | {f for f, _, _ in self.texts}
            | {f for f, _ in self.deletes}
        )
