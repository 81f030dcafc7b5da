"""Password hashing (argon2id), access tokens (JWT HS256) and secret encryption (Fernet)."""

from __future__ import annotations

import time

import jwt
from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

from domain.errors import Unauthenticated


class Argon2PasswordHasher:
    def __init__(self, *, fast: bool = False) -> None:
        # ``fast`` lowers the work factor for test suites only; settings never enable it in prod.
        self._argon = Argon2(time_cost=1, memory_cost=8192, parallelism=1) if fast else Argon2()

    def hash(self, password: str) -> str:
        return self._argon.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


class JwtTokenIssuer:
    """HS256 tokens with ``sub``, ``role``, ``iat`` and ``exp``."""

    algorithm = "HS256"

    def __init__(self, secret: str, *, ttl_seconds: int = 86_400) -> None:
        if len(secret) < 32:
            raise ValueError("JWT secret must be at least 32 characters")
        self._secret = secret
        self._ttl = ttl_seconds

    def issue(self, *, user_id: str, role: str) -> tuple[str, int]:
        now = int(time.time())
        claims = {"sub": user_id, "role": role, "iat": now, "exp": now + self._ttl}
        return jwt.encode(claims, self._secret, algorithm=self.algorithm), self._ttl

    def decode(self, token: str) -> dict[str, object]:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token has expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None
        return claims


class SecretBox:
    """Encrypts secrets at rest (user provider keys, TOTP seeds, source credentials)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("secret cannot be decrypted with this key") from None
