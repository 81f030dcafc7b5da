"""Everyday questions: does search find the memory that answers a personal-assistant question?

bench/everyday_data.json holds small hand-written memory fields (first-person facts, plans,
preferences, relations, routines, health, money, schedules) with distractors, and 1-4
paraphrased questions per field, each naming the memory (or memories) that answer it. Each
field goes into its own memory field through the MemoryService the way a client adds
memories (default kind, no occurredAt, no metadata); each question is searched in its field
with top_k 5. Prints precision@1 (the top hit answers), recall@3 (an answer in the top 3) and
MRR (within the top 5) for the tune split, the held-out split and both.

A quarter of the fields (every 4th) are held out: tune the engine on "tune" only and look at
"heldout" just to check that a change generalises.

    .venv/bin/python bench/everyday.py [--split tune|heldout|all] [--embedder minilm|hashing]
                                       [--database-url URL] [--show-failures]

The test tests/bench/test_everyday.py imports load, validate, open_runtime, score and
summarise from this file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.entities import Actor, Role  # after the sys.path fix-up above
from domain.memory_drafts import MemoryDraft
from memoria.bootstrap import migrate
from memoria.runtime import build_runtime
from memoria.runtime import make_embedder as build_embedder
from memoria.settings import EMBEDDERS, Settings

DATA = Path(__file__).resolve().with_name("everyday_data.json")
SPLITS = ("tune", "heldout")
TOP_K = 5
MIN_FIELDS = 100
MIN_MEMORIES, MAX_MEMORIES = 3, 30
MIN_QUESTIONS, MAX_QUESTIONS = 1, 4


def load(path: Path = DATA) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["fields"]
    return fields


def expected_split(position: int) -> str:
    """The fixed rule the data file follows: every 4th field (0-based 3, 7, 11 …) held out."""
    return "heldout" if position % 4 == 3 else "tune"


def validate(fields: Sequence[dict[str, Any]]) -> list[str]:
    """Every way the data breaks its shape, as readable problems (empty when it is fine)."""
    problems: list[str] = []
    if len(fields) < MIN_FIELDS:
        problems.append(f"{len(fields)} fields, want at least {MIN_FIELDS}")
    if len(fields) % 4:
        problems.append(f"{len(fields)} fields: not divisible by 4, so not exactly a quarter")
    ids = [f.get("id") for f in fields]
    if len(set(ids)) != len(ids):
        problems.append("field ids are not unique")
    for position, field in enumerate(fields):
        name = field.get("id", f"#{position}")
        if field.get("split") != expected_split(position):
            problems.append(
                f"{name}: split {field.get('split')!r}, want {expected_split(position)}"
            )
        memories = field.get("memories")
        if not isinstance(memories, list) or not all(
            isinstance(m, str) and m.strip() for m in memories
        ):
            problems.append(f"{name}: memories must be a list of non-empty strings")
            continue
        if not MIN_MEMORIES <= len(memories) <= MAX_MEMORIES:
            problems.append(f"{name}: {len(memories)} memories")
        if len(set(memories)) != len(memories):
            problems.append(f"{name}: repeated memory text")
        questions = field.get("questions") or []
        if not MIN_QUESTIONS <= len(questions) <= MAX_QUESTIONS:
            problems.append(f"{name}: {len(questions)} questions")
        for q in questions:
            text, answers = q.get("question"), q.get("answers")
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{name}: a question without text")
            if (
                not isinstance(answers, list)
                or not answers
                or not all(isinstance(a, int) and 0 <= a < len(memories) for a in answers)
                or len(set(answers)) != len(answers)
            ):
                problems.append(f"{name}: {text!r} has answers {answers!r} out of range")
    return problems


def select(fields: Sequence[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    return [f for f in fields if split == "all" or f["split"] == split]


@dataclass(frozen=True)
class Outcome:
    """One question: the memory indices of its top-k hits, best first."""

    field: str
    split: str
    question: str
    answers: tuple[int, ...]
    ranked: tuple[frozenset[int], ...]  # a merged (de-duplicated) memory stands for several
    contents: tuple[str, ...]

    @property
    def rank(self) -> int | None:
        """1-based rank of the first hit that answers, None when none of the top k does."""
        for i, indices in enumerate(self.ranked):
            if indices & set(self.answers):
                return i + 1
        return None


def make_embedder(name: str) -> Any:
    """The embedder the server would build for ``MEMORIA_EMBEDDER=name``."""
    return build_embedder(Settings(embedder=name, environment="test"))


@asynccontextmanager
async def open_runtime(
    data_dir: Path, *, embedder: Any, database_url: str | None = None
) -> AsyncIterator[tuple[Any, Actor]]:
    """A migrated runtime on ``database_url`` (SQLite in ``data_dir`` when None) and a fresh
    user to own this run's fields."""
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        environment="test",
        embedder="hashing",  # the embedder actually used is the one passed below
        fast_password_hashing=True,
        admin_password="admin-password-123",
    ).validated()
    runtime = build_runtime(settings, embedder=embedder)
    try:
        await migrate(runtime.db)
        username = f"everyday-{uuid.uuid4().hex[:8]}"
        async with runtime.deps.uow_factory() as uow:
            registered = await runtime.deps.auth.register(
                uow=uow,
                username=username,
                email=f"{username}@example.com",
                password="everyday-bench-1",
            )
            await uow.commit()
        yield runtime, Actor(user_id=registered.user.id, role=Role.USER, via="jwt")
    finally:
        await runtime.db.dispose()


async def score(
    runtime: Any, actor: Actor, fields: Sequence[dict[str, Any]], *, top_k: int = TOP_K
) -> tuple[list[Outcome], int]:
    """Ingest each field as a client would, search each question; returns the outcomes and
    how many memories the service merged into an earlier one as near-duplicates."""
    deps = runtime.deps
    outcomes: list[Outcome] = []
    merged = 0
    for field in fields:
        async with deps.uow_factory() as uow:
            field_id = (await deps.fields.create(uow=uow, actor=actor, name=field["id"])).id
            added = await deps.memories.add_many(
                uow=uow,
                actor=actor,
                field_id=field_id,
                drafts=[MemoryDraft(content=text) for text in field["memories"]],
            )
            await uow.commit()
        indices: dict[str, set[int]] = {}
        for i, memory in enumerate(added):
            indices.setdefault(memory.id, set()).add(i)
        merged += len(added) - len(indices)
        for q in field["questions"]:
            async with deps.uow_factory() as uow:
                hits = await deps.memories.search(
                    uow=uow, actor=actor, field_ids=[field_id], query=q["question"], top_k=top_k
                )
            outcomes.append(
                Outcome(
                    field=field["id"],
                    split=field["split"],
                    question=q["question"],
                    answers=tuple(q["answers"]),
                    ranked=tuple(frozenset(indices.get(h.memory.id, ())) for h in hits),
                    contents=tuple(h.memory.content for h in hits),
                )
            )
    return outcomes, merged


def metrics(outcomes: Sequence[Outcome]) -> dict[str, float]:
    n = len(outcomes)
    ranks = [o.rank for o in outcomes]
    return {
        "n": float(n),
        "p@1": sum(r == 1 for r in ranks) / n if n else 0.0,
        "r@3": sum(r is not None and r <= 3 for r in ranks) / n if n else 0.0,
        "mrr": sum(1 / r for r in ranks if r is not None) / n if n else 0.0,
    }


def summarise(outcomes: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Metrics per split present, plus "all" when both are."""
    table: dict[str, dict[str, float]] = {}
    for split in SPLITS:
        chosen = [o for o in outcomes if o.split == split]
        if chosen:
            table[split] = metrics(chosen)
    if len(table) > 1:
        table["all"] = metrics(outcomes)
    return table


def render(table: dict[str, dict[str, float]], fields: Sequence[dict[str, Any]]) -> str:
    counts = {s: len(select(fields, s)) for s in (*SPLITS, "all")}
    lines = [f"{'split':<8} {'fields':>6} {'questions':>9} {'P@1':>6} {'R@3':>6} {'MRR':>6}"]
    for split, row in table.items():
        lines.append(
            f"{split:<8} {counts[split]:>6} {int(row['n']):>9} "
            f"{row['p@1']:6.3f} {row['r@3']:6.3f} {row['mrr']:6.3f}"
        )
    return "\n".join(lines)


def failures(outcomes: Sequence[Outcome], fields: Sequence[dict[str, Any]]) -> str:
    """Questions whose top hit does not answer them: expected memory vs what came first."""
    memories = {f["id"]: f["memories"] for f in fields}
    lines: list[str] = []
    for o in outcomes:
        if o.rank == 1:
            continue
        expected = " | ".join(memories[o.field][a] for a in o.answers)
        got = o.contents[0] if o.contents else "(nothing)"
        where = f"answer at rank {o.rank}" if o.rank else f"answer not in top {TOP_K}"
        lines += [
            f"[{o.field} {o.split}] {o.question}  ({where})",
            f"    expected: {expected}",
            f"    got:      {got}",
        ]
    return "\n".join(lines) if lines else "(none)"


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="all", choices=[*SPLITS, "all"])
    local = [name for name in EMBEDDERS if name != "openai"]  # offline ones
    parser.add_argument("--embedder", default="minilm", choices=local)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args(argv)

    fields = load(args.data)
    problems = validate(fields)
    if problems:
        raise SystemExit("invalid data:\n  " + "\n  ".join(problems))
    chosen = select(fields, args.split)
    embedder = make_embedder(args.embedder)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="everyday-") as tmp:
        opened = open_runtime(Path(tmp), embedder=embedder, database_url=args.database_url)
        async with opened as (runtime, actor):
            outcomes, merged = await score(runtime, actor, chosen)
    elapsed = time.perf_counter() - started
    shown_argv = [re.sub(r"(://[^:/@]*:)[^@]+@", r"\1***@", a) for a in argv]  # no passwords
    print(f"$ .venv/bin/python bench/everyday.py {shlex.join(shown_argv)}".rstrip())
    print(f"embedder {args.embedder}, top_k {TOP_K}, {elapsed:.1f} s")
    if merged:
        print(f"warning: {merged} memories were merged into near-duplicates at ingest")
    print(render(summarise(outcomes), fields))
    if args.show_failures:
        # Held-out failures only when asked for by name: reading them invites tuning on them.
        shown = [o for o in outcomes if args.split == "heldout" or o.split == "tune"]
        label = "held-out" if args.split == "heldout" else "tune"
        print(f"\nfailures on the {label} split (top hit is not an answer):")
        print(failures(shown, fields))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
