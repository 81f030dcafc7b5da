"""Registration, login, token and API-key authentication."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from domain.clock import Clock
from domain.entities import Actor, ApiKey, Role, Tier, User, new_id
from domain.errors import BadUserInput, Conflict, NotFound, Unauthenticated, UserNotFound
from domain.policy import Limits, check_email, check_password, check_username, require_text
from domain.ports import PasswordHasher, TokenIssuer, UnitOfWork
from domain.services.login_throttle import LoginThrottle

API_KEY_PREFIX = "mk_"
# How stale an API key's last_used_at may get: it is written at most this often.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def hash_api_key(secret: str) -> str:
    """API keys are high-entropy, so a fast hash is safe here (unlike passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuthResult:
    access_token: str
    expires_in: int
    user: User


@dataclass(frozen=True, slots=True)
class NewApiKey:
    secret: str
    key: ApiKey


class MfaCheck:
    """Hook for TOTP verification; the default refuses users who enabled MFA without a code."""

    async def verify(self, *, uow: UnitOfWork, user: User, code: str | None) -> None:
        if user.mfa_secret_encrypted is not None and not code:
            raise Unauthenticated("MFA code required", details={"reason": "mfa_required"})


class AuthService:
    def __init__(
        self,
        *,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        limits: Limits,
        mfa: MfaCheck | None = None,
        throttle: LoginThrottle | None = None,
        default_tier: Tier = Tier.UNLIMITED,
    ) -> None:
        """``throttle`` counts failed sign-ins per account (the edges add the client
        address); ``default_tier`` is stored on accounts registered without a tier."""
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._limits = limits
        self._mfa = mfa or MfaCheck()
        self._throttle = throttle
        self._default_tier = default_tier

    @property
    def throttle(self) -> LoginThrottle | None:
        """The sign-in throttle, for edges to count attempts per client address."""
        return self._throttle

    async def register(
        self,
        *,
        uow: UnitOfWork,
        username: str,
        email: str,
        password: str,
        role: Role = Role.USER,
        tier: Tier | None = None,
    ) -> AuthResult:
        name = check_username(username)
        mail = check_email(email)
        check_password(password, limits=self._limits)
        if await uow.users.exists(username=name, email=mail):
            raise Conflict("username or email is already registered")
        user = User(
            id=new_id(),
            username=name,
            email=mail,
            password_hash=self._hasher.hash(password),
            role=role,
            tier=tier or self._default_tier,
            balance_micros=0,
            created_at=self._clock.now(),
        )
        await uow.users.add(user)
        token, ttl = self._tokens.issue(user_id=user.id, role=user.role.value)
        return AuthResult(access_token=token, expires_in=ttl, user=user)

    async def set_password(self, *, uow: UnitOfWork, user: User, password: str) -> User:
        """An operator's reset (accounts imported without a usable password, a lost one):
        the same password policy as registration; tokens already issued stay valid until
        they expire."""
        check_password(password, limits=self._limits)
        changed = replace(user, password_hash=self._hasher.hash(password))
        await uow.users.update(changed)
        return changed

    async def login(
        self, *, uow: UnitOfWork, username_or_email: str, password: str, mfa_code: str | None = None
    ) -> AuthResult:
        login = require_text(username_or_email, name="usernameOrEmail", max_chars=254)
        if not password:
            raise BadUserInput("password is required", details={"field": "password"})
        user = await uow.users.by_login(login)
        account = user.id if user else login.lower()  # one count however the name is typed
        if self._throttle is not None:
            # Before the password is checked: a locked account is refused even when right.
            self._throttle.guard(account=account)
        # Verify even for unknown users so timing does not reveal which usernames exist.
        valid = self._hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not valid or user.disabled:
            self._failed(account)
            raise Unauthenticated("invalid username or password")
        try:
            await self._mfa.verify(uow=uow, user=user, code=mfa_code)
        except Unauthenticated as refused:
            # "Code required" is the normal second step, not a guess; a wrong code is.
            if refused.details.get("reason") != "mfa_required":
                self._failed(account)
            raise
        token, ttl = self._tokens.issue(user_id=user.id, role=user.role.value)
        return AuthResult(access_token=token, expires_in=ttl, user=user)

    def _failed(self, account: str) -> None:
        if self._throttle is not None:
            self._throttle.failed(account=account)

    async def authenticate(self, *, uow: UnitOfWork, token: str | None) -> Actor:
        """Resolve a bearer token (JWT or API key) to a live principal, or raise."""
        if not token:
            raise Unauthenticated("authentication required")
        if token.startswith(API_KEY_PREFIX):
            key = await uow.api_keys.by_hash(hash_api_key(token))
            if key is None or key.revoked_at is not None:
                raise Unauthenticated("invalid or revoked API key")
            now = self._clock.now()
            # At most one write a minute per key: a busy client must not turn every read
            # into a write (SQLite has one writer).
            if key.last_used_at is None or now - key.last_used_at >= API_KEY_TOUCH_INTERVAL:
                await uow.api_keys.touch(key.id, at=now)
            user = await uow.users.get(key.user_id)
            via = "api_key"
        else:
            claims = self._tokens.decode(token)
            user = await uow.users.get(str(claims.get("sub", "")))
            via = "jwt"
        if user is None:
            raise UserNotFound("User not found")
        if user.disabled:
            raise Unauthenticated("user is disabled")
        return Actor(user_id=user.id, role=user.role, via=via)

    async def me(self, *, uow: UnitOfWork, actor: Actor) -> User:
        user = await uow.users.get(actor.user_id)
        if user is None:
            raise UserNotFound("User not found")
        return user

    async def create_api_key(self, *, uow: UnitOfWork, actor: Actor, name: str) -> NewApiKey:
        label = require_text(name, name="name", max_chars=self._limits.max_name_chars)
        prefix = secrets.token_hex(4)
        secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            id=new_id(),
            user_id=actor.user_id,
            name=label,
            prefix=f"{API_KEY_PREFIX}{prefix}",
            secret_hash=hash_api_key(secret),
            created_at=self._clock.now(),
        )
        await uow.api_keys.add(key)
        return NewApiKey(secret=secret, key=key)

    async def list_api_keys(self, *, uow: UnitOfWork, actor: Actor) -> list[ApiKey]:
        return await uow.api_keys.list(user_id=actor.user_id)

    async def revoke_api_key(self, *, uow: UnitOfWork, actor: Actor, key_id: str) -> bool:
        key = await uow.api_keys.get(key_id, user_id=actor.user_id)
        if key is None:
            raise NotFound("API key not found")
        if key.revoked_at is None:
            await uow.api_keys.revoke(key.id, at=self._clock.now())
        return True


# An argon2 hash of a random string: verifying against it costs the same as a real check.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$"
    "Jx0J2x8yq0e9mJ1pZ7b0hGJ3Z8m6o2x2Yk8x2cQ9b1A"
)
