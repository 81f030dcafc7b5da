"""TOTP enrolment (begin -> confirm with a code -> on) and verification at login.

A code is accepted once: the time step it belongs to is recorded, and a code from that step
or an earlier one is refused afterwards (replay protection shared by all server processes).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.clock import Clock
from domain.entities import Actor, User
from domain.errors import BadUserInput, NotFound, Unauthenticated
from domain.mfa import TotpProvider
from domain.ports import SecretCipher, UnitOfWork
from domain.services.auth import MfaCheck

ISSUER = "Memoria"


@dataclass(frozen=True, slots=True)
class MfaEnrolment:
    secret: str
    otpauth_uri: str


def _clean(code: str | None) -> str:
    return "".join((code or "").split())


class MfaService(MfaCheck):
    """Also the login-time check handed to :class:`AuthService`."""

    def __init__(self, *, totp: TotpProvider, cipher: SecretCipher, clock: Clock) -> None:
        self._totp = totp
        self._cipher = cipher
        self._clock = clock

    async def begin(self, *, uow: UnitOfWork, actor: Actor) -> MfaEnrolment:
        user = await self._user(uow, actor)
        secret = self._totp.new_secret()
        await uow.mfa.set_pending(user.id, self._cipher.encrypt(secret), at=self._clock.now())
        uri = self._totp.provisioning_uri(secret, account=user.email, issuer=ISSUER)
        return MfaEnrolment(secret=secret, otpauth_uri=uri)

    async def confirm(self, *, uow: UnitOfWork, actor: Actor, code: str) -> User:
        """Turn MFA on once the user proves their authenticator has the pending secret."""
        user = await self._user(uow, actor)
        state = await uow.mfa.get(user.id)
        if state is None or state.pending_secret_encrypted is None:
            raise BadUserInput("no MFA enrolment is pending; begin one first")
        secret = self._cipher.decrypt(state.pending_secret_encrypted)
        await self._use(uow, user, secret, code, during_login=False)
        user.mfa_secret_encrypted = state.pending_secret_encrypted
        await uow.users.update(user)
        await uow.mfa.set_pending(user.id, None, at=self._clock.now())
        return user

    async def disable(self, *, uow: UnitOfWork, actor: Actor, code: str) -> User:
        user = await self._user(uow, actor)
        if user.mfa_secret_encrypted is None:
            raise BadUserInput("MFA is not enabled")
        secret = self._cipher.decrypt(user.mfa_secret_encrypted)
        await self._use(uow, user, secret, code, during_login=False)
        user.mfa_secret_encrypted = None
        await uow.users.update(user)
        return user

    async def verify(self, *, uow: UnitOfWork, user: User, code: str | None) -> None:
        if user.mfa_secret_encrypted is None:
            return
        if not _clean(code):
            raise Unauthenticated("MFA code required", details={"reason": "mfa_required"})
        secret = self._cipher.decrypt(user.mfa_secret_encrypted)
        await self._use(uow, user, secret, code, during_login=True)

    async def _use(
        self, uow: UnitOfWork, user: User, secret: str, code: str | None, *, during_login: bool
    ) -> None:
        now = self._clock.now()
        step = self._totp.matching_step(secret, _clean(code), at=now)
        if step is None or not await uow.mfa.use_step(user.id, step, at=now):
            details = {"reason": "invalid_mfa_code", "field": "mfaCode"}
            if during_login:
                raise Unauthenticated("Invalid MFA code", details=details)
            raise BadUserInput("Invalid MFA code", details=details)

    async def _user(self, uow: UnitOfWork, actor: Actor) -> User:
        user = await uow.users.get(actor.user_id)
        if user is None:
            raise NotFound("User not found")
        return user
