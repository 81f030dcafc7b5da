"""Retrieval quality on LoCoMo (Maharana et al., ACL 2024), no LLM anywhere.

Each conversation goes into its own memory field through ``MemoryService.add_many`` (the call
GraphQL's ``addMemories`` makes) and each question is searched in its conversation's field.
A question's score at k is the fraction of its evidence turns among the top k. The shapes:

- ``client``: exactly what a client sends through the API: each turn ``"Speaker: text"``
  (plus `` [shares caption]``), ``kind: EPISODE``, ``metadata: {dia_id}``, and the session's
  date as ``occurredAt`` for every turn of that session (the data set dates sessions, not
  turns); one ``addMemories`` call per session; no speaker.
- ``no-kind`` (only when asked for): the client shape without ``kind``, as a client that
  never heard of it sends turns.
- ``bench``: the same turns with the documented ``speaker`` field and turn i of a session at
  +i minutes.
- ``out-of-order`` (only when asked for): the ``bench`` shape with each session sent in two
  calls, its later half first, as a client syncing history newest first does.
- ``messages`` (only when asked for): each conversation as a client of the conversation APIs
  sends it (MemoryKit's ``POST /v1/conversations/{id}/messages``, GraphQL's ``addMessage``):
  one conversation in the field, one message per turn (the first speaker ``user``, the other
  ``assistant``; the text as in ``client``, tagged with its dia_id), no dates (a message is
  dated when it is stored); the server keeps each message as a memory in the background,
  and the bench waits for that before searching.

Prints R@5, R@10, R@30 and all-evidence@10 per category for BM25 alone, dense alone and the
shipped default (plus any --variant), per shape, on the tuning conversations (conv-26 …
conv-44) and, separately, the held-out ones (conv-47 … conv-50).

    .venv/bin/python bench/locomo.py [--shape client|bench|both] [--data PATH]
        [--database-url URL] [--keep DIR]

The data set is read from ../shared/data/locomo/locomo10.json and never copied.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import shlex
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.entities import Actor, Role  # after the sys.path fix-up above
from domain.memory_drafts import MemoryDraft
from domain.retrieval.settings import RetrievalSettings
from memoria.bootstrap import migrate
from memoria.runtime import build_runtime
from memoria.runtime import make_embedder as build_embedder
from memoria.settings import EMBEDDERS, Settings

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo10.json"
TUNE = ("conv-26", "conv-30", "conv-41", "conv-42", "conv-43", "conv-44")
HELD_OUT = ("conv-47", "conv-48", "conv-49", "conv-50")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
KS = (5, 10, 30)
_EVIDENCE = re.compile(r"D:?(\d+):0*(\d+)")

PURE = {
    "neighbour_weight": 0.0,
    "session_weight": 0.0,
    "prf_terms": 0,
    "time_weight": 0.0,
    "when_weight": 0.0,
    "speaker_weight": 0.0,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "bm25": {"mode": "lexical", **PURE},
    "dense": {"mode": "dense", **PURE},
    "rrf": {"fusion": "rrf", "lexical_weight": 1.0, **PURE},
    "convex": {**PURE},
    "default": {},
}


def evidence_ids(raw: Sequence[str]) -> list[str]:
    """Normalise LoCoMo's evidence quirks: "D8:6; D9:17", "D:11:26", "D30:05"."""
    found: list[str] = []
    for item in raw:
        for match in _EVIDENCE.finditer(str(item)):
            found.append(f"D{int(match.group(1))}:{int(match.group(2))}")
    return list(dict.fromkeys(found))


def session_date(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


SHAPES = ("client", "bench")
# The client shape from a client that never sets ``kind`` (the server infers it).
NO_KIND = "no-kind"
# The bench shape, each session's later half sent before its earlier half.
OUT_OF_ORDER = "out-of-order"
# Turns sent as conversation messages, one request each (see the module docstring).
MESSAGES = "messages"


def sessions(sample: dict[str, Any], shape: str) -> list[list[MemoryDraft]]:
    """The conversation's turns as drafts, one list per ``addMemories`` call, in the given
    shape (one call per session, or two for ``out-of-order``: its later half first)."""
    conv = sample["conversation"]
    found = []
    numbers = sorted((int(k.split("_")[1]), k) for k in conv if re.fullmatch(r"session_\d+", k))
    for _number, key in numbers:
        start = session_date(conv[f"{key}_date_time"])
        drafts = []
        for i, turn in enumerate(conv[key]):
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares {turn['blip_caption']}]"
            if shape in ("client", NO_KIND):
                drafts.append(
                    MemoryDraft(
                        content=text,
                        kind="episode" if shape == "client" else None,
                        occurred_at=start,
                        metadata={"dia_id": turn["dia_id"]},
                    )
                )
            else:
                drafts.append(
                    MemoryDraft(
                        content=text,
                        source="locomo",
                        kind="episode",
                        occurred_at=start + timedelta(minutes=i),
                        metadata={"dia_id": turn["dia_id"]},
                        speaker=turn["speaker"],
                    )
                )
        if shape == OUT_OF_ORDER:
            half = len(drafts) // 2
            found += [drafts[half:], drafts[:half]]
        else:
            found.append(drafts)
    return [drafts for drafts in found if drafts]


def field_name(shape: str, sample_id: str) -> str:
    return f"{shape}-{sample_id}"


class CachingEmbedder:
    """Wraps the real embedder so each question is embedded once across variants."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cache: dict[Any, Any] = {}

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def dimension(self) -> int:
        return int(self.inner.dimension)

    async def embed(self, texts: Sequence[str]) -> Any:
        if len(texts) == 1 and texts[0] in self.cache:
            return [self.cache[texts[0]]]
        vectors = await self.inner.embed(texts)
        if len(texts) == 1:
            self.cache[texts[0]] = vectors[0]
        return vectors

    async def embed_query(self, text: str) -> Any:
        key = ("query", text)
        if key not in self.cache:
            self.cache[key] = await self.inner.embed_query(text)
        return self.cache[key]


def make_embedder(name: str) -> Any:
    """The embedder the server would build for ``MEMORIA_EMBEDDER=name``."""
    return build_embedder(Settings(embedder=name, environment="test"))


async def ingest(
    runtime: Any, actor: Actor, samples: list[dict[str, Any]], shapes: Sequence[str]
) -> dict[str, str]:
    deps = runtime.deps
    fields: dict[str, str] = {}
    async with deps.uow_factory() as uow:
        for field in await deps.fields.list(uow=uow, actor=actor):
            fields[field.name] = field.id
    for shape in shapes:
        started, count = time.perf_counter(), 0
        for sample in samples:
            name = field_name(shape, sample["sample_id"])
            if name in fields:
                continue
            async with deps.uow_factory() as uow:
                fields[name] = (await deps.fields.create(uow=uow, actor=actor, name=name)).id
                await uow.commit()
            if shape == MESSAGES:
                count += await post_messages(runtime, actor, sample, fields[name])
                continue
            for drafts in sessions(sample, shape):
                async with deps.uow_factory() as uow:
                    await deps.memories.add_many(
                        uow=uow, actor=actor, field_id=fields[name], drafts=drafts
                    )
                    await uow.commit()
                count += len(drafts)
        if shape == MESSAGES:
            await runtime.chat.recall.drain()  # the messages become memories in the background
        if count:
            elapsed = time.perf_counter() - started
            print(
                f"{shape}: ingested {count} turns in {elapsed:.1f} s ({count / elapsed:.0f}/s)",
                file=sys.stderr,
            )
    return fields


async def post_messages(runtime: Any, actor: Actor, sample: dict[str, Any], field_id: str) -> int:
    """The ``messages`` shape: one conversation, one ``add_message`` request per turn."""
    deps = runtime.deps
    conv = sample["conversation"]
    async with deps.uow_factory() as uow:
        conversation = await deps.conversations.create(
            uow=uow, actor=actor, title=sample["sample_id"], field_id=field_id
        )
        await uow.commit()
    count = 0
    for drafts in sessions(sample, "client"):
        for draft in drafts:
            role = "user" if draft.content.startswith(f"{conv['speaker_a']}: ") else "assistant"
            async with deps.uow_factory() as uow:
                await deps.conversations.add_message(
                    uow=uow,
                    actor=actor,
                    conversation_id=conversation.id,
                    role=role,
                    content=draft.content,
                    tags=[draft.metadata["dia_id"]],
                )
                await uow.commit()
            count += 1
    return count


async def evaluate(
    runtime: Any,
    actor: Actor,
    samples: list[dict[str, Any]],
    fields: dict[str, str],
    variants: dict[str, RetrievalSettings],
    shapes: Sequence[str],
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """scores[variant/shape][sample_id] -> one dict per question (category, r@k, all@10)."""
    deps = runtime.deps
    scores: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for sample in samples:
        for qa in sample["qa"]:
            gold = evidence_ids(qa.get("evidence") or [])
            if not gold:
                continue
            for (name, chosen), shape in itertools.product(variants.items(), shapes):
                async with deps.uow_factory() as uow:
                    hits = await deps.memories.search(
                        uow=uow,
                        actor=actor,
                        field_ids=[fields[field_name(shape, sample["sample_id"])]],
                        query=qa["question"],
                        top_k=max(KS),
                        settings=chosen,
                    )
                # The messages shape carries the dia_id as its message's tag.
                ranked = [
                    h.memory.metadata.get("dia_id") or next(iter(h.memory.tags), None) for h in hits
                ]
                row: dict[str, float] = {"category": float(qa["category"])}
                for k in KS:
                    row[f"r@{k}"] = sum(g in ranked[:k] for g in gold) / len(gold)
                row["all@10"] = float(all(g in ranked[:10] for g in gold))
                scores[f"{name}/{shape}"][sample["sample_id"]].append(row)
    return scores


def table(
    title: str, scores: dict[str, dict[str, list[dict[str, float]]]], ids: Sequence[str]
) -> str:
    lines = [
        f"\n{title}",
        f"{'variant/shape':<18} {'category':<16} {'n':>4} "
        + " ".join(f"{c:>7}" for c in ("R@5", "R@10", "R@30", "all@10")),
    ]
    groups: list[tuple[str, set[int]]] = [
        (f"{c} {n}", {c}) for c, n in CATEGORIES.items() if c != 5
    ]
    groups += [("1-4 together", {1, 2, 3, 4}), ("5 adversarial", {5})]
    for variant, per_sample in scores.items():
        rows = [r for sid in ids for r in per_sample.get(sid, [])]
        for label, cats in groups:
            chosen = [r for r in rows if int(r["category"]) in cats]
            if not chosen:
                continue
            cells = [
                sum(r[key] for r in chosen) / len(chosen)
                for key in ("r@5", "r@10", "r@30", "all@10")
            ]
            lines.append(
                f"{variant:<18} {label:<16} {len(chosen):>4} "
                + " ".join(f"{v:7.3f}" for v in cells)
            )
    return "\n".join(lines)


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """NAME:key=value,key=value — a RetrievalSettings override to compare."""
    name, _, body = text.partition(":")
    values: dict[str, Any] = {}
    for part in filter(None, body.split(",")):
        key, _, raw = part.partition("=")
        if re.fullmatch(r"-?\d+", raw):
            values[key] = int(raw)
        elif re.fullmatch(r"-?\d*\.\d+", raw):
            values[key] = float(raw)
        else:
            values[key] = raw  # mode, fusion, dense_norm
    return name, values


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--pg-vectors",
        choices=["process", "database"],
        default="process",
        help="with --database-url: MEMORIA_VECTOR_SEARCH",
    )
    parser.add_argument("--keep", type=Path, default=None, help="data dir to reuse between runs")
    local = [name for name in EMBEDDERS if name != "openai"]  # offline ones
    parser.add_argument("--embedder", default="minilm", choices=local)
    parser.add_argument("--variant", action="append", default=[], help="NAME:key=value,...")
    parser.add_argument("--only", default="", help="comma-separated variant names to run")
    parser.add_argument("--tune-only", action="store_true", help="skip the held-out conversations")
    parser.add_argument(
        "--shape", choices=[*SHAPES, NO_KIND, OUT_OF_ORDER, MESSAGES, "both"], default="both"
    )
    args = parser.parse_args(argv)

    samples = json.loads(args.data.read_text())
    if args.tune_only:
        samples = [s for s in samples if s["sample_id"] in TUNE]
    data_dir = args.keep or Path(tempfile.mkdtemp(prefix="locomo-"))
    settings = Settings(
        data_dir=data_dir,
        database_url=args.database_url,
        environment="test",
        embedder="hashing",
        fast_password_hashing=True,
        admin_password="admin-password-123",
        vector_search=args.pg_vectors,
    ).validated()
    embedder = CachingEmbedder(make_embedder(args.embedder))
    runtime = build_runtime(settings, embedder=embedder)
    await migrate(runtime.db)
    if runtime.fanout is not None:
        # As `memoria serve` does: vector copies are searched only while this process
        # hears the other processes' writes.
        runtime.fanout.start()
        await runtime.fanout.listening.wait()
    async with runtime.deps.uow_factory() as uow:
        user = await uow.users.by_login("locomo")
        if user is None:
            user = await runtime.deps.auth.register(
                uow=uow, username="locomo", email="locomo@example.com", password="locomo-bench-1"
            )
            await uow.commit()
    user_id = user.id if hasattr(user, "id") else user.user.id
    actor = Actor(user_id=user_id, role=Role.USER, via="jwt")
    shapes = SHAPES if args.shape == "both" else (args.shape,)
    fields = await ingest(runtime, actor, samples, shapes)

    base = runtime.deps.memories.retrieval
    specs = dict(VARIANTS)
    specs.update(parse_variant(v) for v in args.variant)
    if args.only:
        specs = {k: v for k, v in specs.items() if k in args.only.split(",")}
    variants = {name: replace(base, **values) for name, values in specs.items()}
    started = time.perf_counter()
    scores = await evaluate(runtime, actor, samples, fields, variants, shapes)
    elapsed = time.perf_counter() - started
    print(f"$ .venv/bin/python bench/locomo.py {shlex.join(argv)}".rstrip())
    print(f"default settings: {base}")
    print(table("Tuning set: conv-26 … conv-44", scores, TUNE))
    if not args.tune_only:
        print(table("Held out: conv-47 … conv-50", scores, HELD_OUT))
    print(
        f"\n{sum(len(s['qa']) for s in samples)} questions x {len(variants)} variants "
        f"x {len(shapes)} shapes "
        f"searched in {elapsed:.0f} s"
    )
    if runtime.fanout is not None:
        await runtime.fanout.aclose()
    await runtime.db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
