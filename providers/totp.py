"""RFC 6238 TOTP codes through pyotp (30 s steps, 6 digits, one step of drift allowed)."""

from __future__ import annotations

from datetime import datetime

import pyotp


class PyotpTotp:
    def __init__(self, *, interval: int = 30, digits: int = 6, drift_steps: int = 1) -> None:
        self._interval = interval
        self._digits = digits
        self._drift = drift_steps

    def new_secret(self) -> str:
        return pyotp.random_base32()

    def provisioning_uri(self, secret: str, *, account: str, issuer: str) -> str:
        return self._totp(secret).provisioning_uri(name=account, issuer_name=issuer)

    def matching_step(self, secret: str, code: str, *, at: datetime) -> int | None:
        if len(code) != self._digits or not code.isdigit():
            return None
        totp = self._totp(secret)
        step = totp.timecode(at)
        for offset in range(-self._drift, self._drift + 1):
            candidate = step + offset
            # pyotp compares in constant time; the step's code is generated from its counter.
            if pyotp.utils.strings_equal(code, totp.generate_otp(candidate)):
                return candidate
        return None

    def _totp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, interval=self._interval, digits=self._digits)
