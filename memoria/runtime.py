"""``build_runtime(settings)``: wires adapters to the domain services one deployment runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from domain.clock import SystemClock
from domain.events import LLM_CATALOG_CHANGED
from domain.jobs import JobPolicy
from domain.ports import Embedder
from domain.rate_policy import RateLimitCounter
from domain.services.attachments import AttachmentService
from domain.services.auth import AuthService
from domain.services.conversations import ConversationService
from domain.services.fields import FieldService
from domain.services.login_throttle import LoginThrottle
from domain.services.mfa import MfaService
from domain.services.patterns import PatternSettings
from domain.services.quotas import QuotaService
from domain.services.rate_limits import RateLimitService
from domain.services.registry import Services
from domain.services.stats import StatsService
from memoria import __version__
from memoria.bootstrap import Secrets, load_secrets, make_database_private
from memoria.chat import ChatParts, build_chat_services
from memoria.maintenance import PromotionSweeper, ReembedWorker
from memoria.observability.metrics import AppMetrics
from memoria.observability.timing import TimedEmbedder, memory_service
from memoria.patterns import PatternParts, build_patterns
from memoria.settings import Settings
from memoria.sources import SourceParts, build_sources
from memoria.webhooks import WebhookParts, build_webhooks
from memoria.workers import BackgroundWorkers
from persistence.database import Database
from persistence.event_fanout import PgEventFanout
from persistence.field_cache import FIELDS_CHANGED
from persistence.login_failures import CHANNEL as LOGIN_FAILURES
from persistence.login_failures import PgLoginFailureCounter, announced, catch_up
from persistence.memory_changes import MEMORIES_CHANGED
from persistence.outbox import write_outbox
from persistence.rate_limits import MemoryRateLimitCounter, SqlRateLimitCounter
from persistence.repositories.jobs import job_outbox
from providers.outbound.guard import OutboundGuard
from providers.security import Argon2PasswordHasher, JwtTokenIssuer, SecretBox
from providers.totp import PyotpTotp

log = logging.getLogger("memoria")


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "hashing":
        from providers.embedders.hashing import HashingEmbedder

        return HashingEmbedder()
    if settings.embedder == "openai":
        from providers.embedders.openai_compat import OpenAICompatEmbedder

        assert settings.embeddings_url  # validated() requires both for this embedder
        assert settings.embeddings_model
        return OpenAICompatEmbedder(
            base_url=settings.embeddings_url,
            model=settings.embeddings_model,
            api_key=settings.embeddings_api_key,
            guard=OutboundGuard(settings.integrations.outbound_policy),
        )
    from providers.embedders.minilm import MiniLMEmbedder

    if settings.embedder == "minilm":
        return MiniLMEmbedder()
    from providers.embedders.e5_small import E5SmallEmbedder

    if settings.embedder == "e5-small":
        return E5SmallEmbedder()
    from providers.embedders.ensemble import EnsembleEmbedder

    # Weights chosen on the tuning sets, dense retrieval alone (providers/embedders/ensemble.py).
    return EnsembleEmbedder([(MiniLMEmbedder(), 0.2), (E5SmallEmbedder(), 0.8)])


@dataclass(frozen=True)
class Similarity:
    """Cosines that mean "the same" for one embedder: a near-duplicate fact, a repeated
    request, a semantic pattern trigger. They differ by model: e5's unrelated texts already
    score ~0.8 (median turn-to-turn cosine in a LoCoMo conversation 0.86, MiniLM's 0.40)."""

    near_duplicate: float = 0.95
    same_request: float = 0.8
    semantic_trigger: float = 0.5


SIMILARITY = {"multilingual-e5-small-q4": Similarity(0.985, 0.95, 0.88)}


def similarity(embedder: Embedder) -> Similarity:
    """The thresholds of ``embedder``; an ensemble's cosine is the weighted mean of its
    parts', and so are its thresholds."""
    parts = getattr(embedder, "parts", None)
    if not parts:
        return SIMILARITY.get(embedder.name, Similarity())
    each = [(similarity(part), weight) for part, weight in parts]
    return Similarity(
        *(
            sum(getattr(s, name) * weight for s, weight in each)
            for name in ("near_duplicate", "same_request", "semantic_trigger")
        )
    )


@dataclass
class Runtime:
    """Everything ``build_runtime`` made, for the app, the CLI and tests to reach."""

    settings: Settings
    db: Database
    secrets: Secrets
    deps: Services
    chat: ChatParts
    patterns: PatternParts
    webhooks: WebhookParts
    sources: SourceParts
    workers: BackgroundWorkers
    reembed: ReembedWorker
    promotion: PromotionSweeper
    metrics: AppMetrics | None = None  # None with MEMORIA_METRICS=off
    fanout: PgEventFanout | None = None  # PostgreSQL: events of the other processes
    generated_admin_password: str | None = None

    async def aclose(self) -> None:
        if self.fanout is not None:
            await self.fanout.aclose()
        await self.promotion.aclose()
        await self.reembed.aclose()
        await self.workers.stop()
        await self.webhooks.sender.close()
        await self.chat.aclose()
        await self.db.dispose()


def build_runtime(settings: Settings, *, embedder: Embedder | None = None) -> Runtime:
    secrets = load_secrets(settings)
    make_database_private(settings)
    db = Database(
        settings.resolved_database_url,
        index_dir=settings.data_dir / "vectors",
        search_index_entries=settings.search_index_entries,
        vector_index_entries=settings.vector_index_entries,
        vector_search=settings.vector_search,
    )
    clock = SystemClock()
    embedder = embedder or make_embedder(settings)
    metrics = AppMetrics() if settings.metrics_enabled else None
    if metrics is not None:
        embedder = TimedEmbedder(
            embedder, seconds=metrics.embedding_seconds, texts=metrics.embedded_texts
        )
    cipher = SecretBox(secrets.encryption_key)
    integrations = settings.integrations

    # Rate-limit counters live in-process on SQLite (one process) and in a shared table on
    # PostgreSQL, where several processes may serve one deployment.
    counter: RateLimitCounter = (
        MemoryRateLimitCounter() if db.is_sqlite else SqlRateLimitCounter(db.side_engine)
    )
    rate_limits = RateLimitService(counter=counter, policy=settings.rate_limits, clock=clock)
    login_policy = settings.rate_limits.login
    throttle = LoginThrottle(
        policy=login_policy,
        clock=clock,
        shared=None if db.is_sqlite else PgLoginFailureCounter(db.side_engine),
    )
    quotas = QuotaService(policy=settings.rate_limits, rate_limits=rate_limits)
    mfa = MfaService(totp=PyotpTotp(), cipher=cipher, clock=clock)
    conversations = ConversationService(clock=clock, limits=settings.limits, quotas=quotas)
    fields = FieldService(embedder=embedder, clock=clock, limits=settings.limits)
    similar = similarity(embedder)
    memories = memory_service(
        metrics,
        embedder=embedder,
        clock=clock,
        limits=settings.limits,
        dedupe_threshold=similar.near_duplicate,
    )
    memories.quotas = quotas

    # Durable jobs (pattern learning, memory extraction, messages kept as memories), shared
    # by every process.
    jobs = JobPolicy(
        lease=timedelta(seconds=settings.job_lease_seconds),
        max_attempts=settings.job_max_attempts,
    )
    poll = integrations.worker_poll_seconds
    patterns = build_patterns(
        uow_factory=db.unit_of_work,
        embedder=embedder,
        clock=clock,
        limits=settings.limits,
        settings=PatternSettings(
            repeat_threshold=similar.same_request, semantic_threshold=similar.semantic_trigger
        ),
        jobs=jobs,
        poll=poll,
    )
    guard = OutboundGuard(integrations.outbound_policy)
    webhooks = build_webhooks(
        integrations,
        uow_factory=db.unit_of_work,
        clock=clock,
        cipher=cipher,
        guard=guard,
        on_outcome=metrics.count_webhook_outcome if metrics is not None else None,
    )
    sources = build_sources(
        integrations,
        public_url=integrations.public_url or f"http://{settings.host}:{settings.port}",
        uow_factory=db.unit_of_work,
        clock=clock,
        cipher=cipher,
        state_key=secrets.jwt_secret.encode(),
        fields=fields,
        memories=memories,
    )
    chat = build_chat_services(
        settings,
        db=db,
        clock=clock,
        fields=fields,
        memories=memories,
        conversations=conversations,
        encryption_key=secrets.encryption_key,
        jobs=jobs,
        patterns=patterns.procedural,
    )
    workers = BackgroundWorkers(
        loops=[webhooks.loop, sources.loop, patterns.learner.loop, chat.extraction, chat.recalling],
        listeners=[webhooks.notice, sources.notice, patterns.learner.notice],
        enabled=integrations.background_workers,
    )
    db.before_commit.append(write_outbox)
    planners = [patterns.learner.plan]
    if settings.remember_messages:
        planners.append(chat.recall.plan)
    db.before_commit.append(job_outbox(planners))
    db.after_commit.append(workers.on_commit)
    fanout: PgEventFanout | None = None
    if not db.is_sqlite:  # several processes may serve one PostgreSQL deployment
        fanout = PgEventFanout(
            db, publish=chat.events.publish, subscribed_users=chat.events.subscribed_users
        )
        db.before_commit.append(fanout.notify)
        db.after_commit.append(fanout.remember)
        # Per-process caches of shared data are dropped when another process changes it.
        fanout.handlers[LLM_CATALOG_CHANGED] = chat.llm.forget
        # The same connection carries the sign-in failures counted by the other processes.
        fanout.channels[LOGIN_FAILURES] = announced(throttle.learn_shared)
        # And the fields whose memories another process changed: what was kept of them goes.
        fanout.channels[FIELDS_CHANGED] = db.fields_changed
        fanout.on_listening.append(db.listening_again)
        if db.memory_feed is not None:
            # Vectors they changed, for this process's copies, trusted only while heard.
            fanout.channels[MEMORIES_CHANGED] = db.memory_feed.received
            db.memory_feed.listening = fanout.listening.is_set
        fanout.on_listening.append(
            catch_up(db.engine, throttle.learn_shared, window_seconds=login_policy.window_seconds)
        )

    async def health() -> Mapping[str, Any]:
        try:
            await db.ping()
        except Exception:  # any failure of the store means unhealthy
            log.exception("health check: database unreachable")
            return {"status": "unhealthy", "database": "unreachable"}
        return {"status": "healthy", "database": "sqlite" if db.is_sqlite else "postgresql"}

    deps = Services(
        uow_factory=db.unit_of_work,
        auth=AuthService(
            hasher=Argon2PasswordHasher(fast=settings.fast_password_hashing),
            tokens=JwtTokenIssuer(secrets.jwt_secret, ttl_seconds=settings.jwt_ttl_seconds),
            clock=clock,
            limits=settings.limits,
            mfa=mfa,
            throttle=throttle,
            default_tier=settings.rate_limits.default_tier,
        ),
        fields=fields,
        memories=memories,
        conversations=conversations,
        limits=settings.limits,
        health=health,
        version=__version__,
        chat=chat.chat,
        llm=chat.llm,
        events=chat.events,
        rate_limits=rate_limits,
        quotas=quotas,
        attachments=AttachmentService(
            conversations=conversations, clock=clock, max_upload_bytes=settings.max_upload_bytes
        ),
        mfa=mfa,
        patterns=patterns.service,
        webhooks=webhooks.service,
        sources=sources.service,
        stats=StatsService(),
    )
    return Runtime(
        settings=settings,
        db=db,
        secrets=secrets,
        deps=deps,
        chat=chat,
        patterns=patterns,
        webhooks=webhooks,
        sources=sources,
        workers=workers,
        reembed=ReembedWorker(db=db, embedder=embedder),
        promotion=PromotionSweeper(
            db=db, memories=memories, interval=settings.promotion_interval_seconds
        ),
        metrics=metrics,
        fanout=fanout,
    )
