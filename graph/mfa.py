"""TOTP multi-factor enrolment: begin (secret + otpauth URI), confirm with a current code
(MFA is on from then: login needs a code), disable with a current code."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from domain.errors import ProviderUnavailable
from domain.services.mfa import MfaService
from graph.types.common import ctx
from graph.types.users import User


@strawberry.type
class MfaEnrollment:
    secret: str = strawberry.field(description="Base32 TOTP secret; shown once.")
    otpauth_uri: str = strawberry.field(description="otpauth:// URI for authenticator apps.")


def _mfa(info: Info[Any, Any]) -> MfaService:
    service = ctx(info).deps.mfa
    if service is None:
        raise ProviderUnavailable("MFA is not available on this server")
    return service


@strawberry.type
class MfaMutation:
    @strawberry.mutation(description="Start TOTP enrolment; MFA is on only after confirmMfa.")
    async def begin_mfa_enrollment(self, info: Info[Any, Any]) -> MfaEnrollment:
        scope = ctx(info)
        enrolment = await _mfa(info).begin(uow=await scope.uow(), actor=await scope.actor())
        return MfaEnrollment(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)

    @strawberry.mutation(description="Confirm enrolment with a current code: MFA is then on.")
    async def confirm_mfa(self, info: Info[Any, Any], code: str) -> User:
        scope = ctx(info)
        user = await _mfa(info).confirm(uow=await scope.uow(), actor=await scope.actor(), code=code)
        return User.of(user)

    @strawberry.mutation(description="Turn MFA off; needs a current code.")
    async def disable_mfa(self, info: Info[Any, Any], code: str) -> User:
        scope = ctx(info)
        user = await _mfa(info).disable(uow=await scope.uow(), actor=await scope.actor(), code=code)
        return User.of(user)
