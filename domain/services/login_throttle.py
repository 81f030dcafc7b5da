"""Sign-in throttling: failed password and TOTP attempts per account and per client address.

The counts are kept in this process (fixed windows of ``LoginPolicy.window_seconds``), so the
check before an attempt can read them: a locked account is refused *before* its password is
verified, a correct one included, and without spending a password hash on it. Memory is
bounded: at most ``max_keys`` accounts and addresses are tracked; past that, the oldest
entries are forgotten first.

With a ``shared`` counter (PostgreSQL mode, several processes), each failure is also
counted in the deployment's shared table, and the counts this process holds are raised to
the shared ones: when it records a failure itself (the shared count comes back), and when
another process's failure is announced (``learn_shared``, fed by the persistence side). A
lock reached through any process then holds in all of them, a few milliseconds later.
Without one, each process counts on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator

from domain.clock import Clock
from domain.errors import RateLimited
from domain.rate_policy import LoginPolicy, RateLimitCounter

log = logging.getLogger("memoria.auth")

# Sign-in failures in the shared counter table, beside the request budgets' keys.
SHARED_PREFIX = "login:"


class LoginThrottled(RateLimited):
    """Sign-in refused for the rest of the window, whatever the password."""

    def __init__(self, *, scope: str, retry_after: int, limit: int) -> None:
        what = "this account" if scope == "account" else "this address"
        super().__init__(
            f"Too many failed sign-in attempts for {what}: sign-in is locked for "
            f"{retry_after} s and every attempt is refused until then, even with the correct "
            "password or code",
            retry_after=retry_after,
            limit=limit,
        )
        self.details["reason"] = "login_throttled"
        self.details["scope"] = scope


def _account_key(account: str) -> str:
    # Hashed: unknown login names are attacker-chosen text of any length.
    normal = " ".join(account.split()).lower()
    return "account:" + hashlib.sha256(normal.encode()).hexdigest()[:32]


class LoginThrottle:
    """Refuses sign-in attempts after too many failures; see the module docstring."""

    def __init__(
        self,
        *,
        policy: LoginPolicy,
        clock: Clock,
        max_keys: int = 100_000,
        shared: RateLimitCounter | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._max_keys = max_keys
        self._shared = shared
        self._sharing: set[asyncio.Task[None]] = set()
        self._failures: dict[str, tuple[int, int]] = {}  # key -> (window start, failures)

    @property
    def policy(self) -> LoginPolicy:
        return self._policy

    @property
    def tracked(self) -> int:
        """How many accounts and addresses have failures on record (at most ``max_keys``)."""
        return len(self._failures)

    def _keys(self, account: str | None, client: str | None) -> Iterator[tuple[str, str, int]]:
        if account and self._policy.max_failures_per_account > 0:
            yield "account", _account_key(account), self._policy.max_failures_per_account
        if client and self._policy.max_failures_per_address > 0:
            yield "address", "address:" + client, self._policy.max_failures_per_address

    def _window(self) -> tuple[int, float]:
        window = self._policy.window_seconds
        now = self._clock.now().timestamp()
        return int(now // window) * window, now

    def guard(self, *, account: str | None = None, client: str | None = None) -> None:
        """Raise :class:`LoginThrottled` if this account or address is locked out."""
        start, now = self._window()
        for scope, key, limit in self._keys(account, client):
            seen = self._failures.get(key)
            if seen is not None and seen[0] == start and seen[1] >= limit:
                reset_at = start + self._policy.window_seconds
                retry_after = max(1, int(reset_at - now + 0.999))
                raise LoginThrottled(scope=scope, retry_after=retry_after, limit=limit)

    def failed(self, *, account: str | None = None, client: str | None = None) -> None:
        """Count one failed attempt for this account and address."""
        start, _ = self._window()
        for _scope, key, _limit in self._keys(account, client):
            seen = self._failures.pop(key, None)  # re-inserted last: dict order is age
            count = seen[1] + 1 if seen is not None and seen[0] == start else 1
            self._failures[key] = (start, count)
            if self._shared is not None:
                self._share(key, start)
        self._prune(start)

    def learn_shared(self, counter_key: str, *, window_start: int, count: int) -> None:
        """The deployment's count of failures for one key of the shared counter table
        (another process's included): the count held here is raised to it."""
        if counter_key.startswith(SHARED_PREFIX):
            self._raise(counter_key.removeprefix(SHARED_PREFIX), window_start, count)

    def _raise(self, key: str, window_start: int, count: int) -> None:
        seen = self._failures.get(key)
        if seen is not None and (seen[0], seen[1]) >= (window_start, count):
            return
        self._failures.pop(key, None)
        self._failures[key] = (window_start, count)
        self._prune(window_start)

    def _share(self, key: str, start: int) -> None:
        # ``failed`` is called from the edges' synchronous bookkeeping, on the event loop.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the local count still holds
            return
        task = loop.create_task(self._count_shared(key, start))
        self._sharing.add(task)
        task.add_done_callback(self._sharing.discard)

    async def _count_shared(self, key: str, start: int) -> None:
        assert self._shared is not None
        try:
            count = await self._shared.hit(
                SHARED_PREFIX + key, window_start=start, window_seconds=self._policy.window_seconds
            )
        except Exception:  # the local count still holds; the shared one is best effort
            log.warning("sign-in throttle: the shared failure count was not updated", exc_info=True)
            return
        self._raise(key, start, count)

    def _prune(self, start: int) -> None:
        if len(self._failures) <= self._max_keys:
            return
        for key in [k for k, (s, _) in self._failures.items() if s != start]:
            del self._failures[key]
        while len(self._failures) > self._max_keys:
            del self._failures[next(iter(self._failures))]
