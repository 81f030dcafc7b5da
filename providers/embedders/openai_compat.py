"""Any OpenAI-compatible ``POST /v1/embeddings`` endpoint (OpenAI, vLLM, Ollama, LM Studio,
llama.cpp server, text-embeddings-inference, ...) as a :class:`domain.ports.Embedder`.

The dimension is read off the first response (:meth:`detect` probes once at start-up),
never configured. Vectors are L2-normalised here, since not every server does it. Transient
failures (connection errors, 429, 5xx) are retried briefly; then ``ProviderUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import httpx
import numpy as np
import numpy.typing as npt

from domain.errors import ProviderUnavailable
from domain.ports import Vector
from providers.outbound.guard import DestinationRefused, OutboundGuard
from providers.outbound.transport import GuardedTransport

F32 = npt.NDArray[np.float32]
_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAICompatEmbedder:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 30.0,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
        guard: OutboundGuard | None = None,
    ) -> None:
        """With ``guard`` (and no ``transport``), the service's address must pass the
        outbound policy on every connection, like any other destination."""
        self._url = base_url.rstrip("/") + "/embeddings"
        if not base_url.rstrip("/").endswith("/v1"):
            self._url = base_url.rstrip("/") + "/v1/embeddings"
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._batch = max(1, batch_size)
        self._timeout = timeout
        self._retries = retries
        self._transport = transport or (GuardedTransport(guard) if guard is not None else None)
        self._client: httpx.AsyncClient | None = None
        self._dimension: int | None = None

    @property
    def name(self) -> str:
        return f"openai:{self._model}"

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise ProviderUnavailable("embedding dimension not known yet: call detect() first")
        return self._dimension

    async def detect(self) -> int:
        """Embed one probe text to learn the dimension (once)."""
        if self._dimension is None:
            await self.embed(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport, trust_env=False
            )
        return self._client

    async def _post(self, texts: list[str]) -> list[list[float]]:
        body = {"model": self._model, "input": texts, "encoding_format": "float"}
        for attempt in range(self._retries + 1):
            try:
                response = await self._http().post(self._url, json=body, headers=self._headers)
            except DestinationRefused as exc:
                raise ProviderUnavailable(
                    f"embedding service refused: {exc.message} (an operator may allow it with"
                    " MEMORIA_ALLOWED_PRIVATE_HOSTS)"
                ) from None
            except httpx.HTTPError as exc:
                if attempt == self._retries:
                    raise ProviderUnavailable(f"embedding service unreachable: {exc}") from None
            else:
                if response.status_code == 200:
                    return _vectors(response.json(), len(texts))
                if response.status_code not in _RETRYABLE or attempt == self._retries:
                    raise ProviderUnavailable(
                        f"embedding service answered HTTP {response.status_code}"
                    )
            await asyncio.sleep(0.2 * 2**attempt)
        raise ProviderUnavailable("embedding service failed")  # pragma: no cover - loop returns

    async def embed(self, texts: Sequence[str]) -> Sequence[Vector]:
        # A float32 matrix: its rows are the port's vectors (numpy is not a typing.Sequence).
        return cast("Sequence[Vector]", await self.embed_matrix(texts))

    async def embed_query(self, text: str) -> Vector:
        return cast("Vector", (await self.embed_matrix([text]))[0])

    async def embed_matrix(self, texts: Sequence[str]) -> F32:
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of strings, not one string")
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            rows += await self._post(list(texts[start : start + self._batch]))
        if not rows:
            return np.empty((0, self._dimension or 0), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        if self._dimension is None:
            self._dimension = int(matrix.shape[1])
        elif matrix.shape[1] != self._dimension:
            raise ProviderUnavailable(
                f"embedding dimension changed from {self._dimension} to {matrix.shape[1]}"
            )
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        result: F32 = matrix / np.maximum(norms, np.float32(1e-12))
        return result

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _vectors(payload: Any, expected: int) -> list[list[float]]:
    try:
        data = sorted(payload["data"], key=lambda item: int(item.get("index", 0)))
        vectors = [list(map(float, item["embedding"])) for item in data]
    except (KeyError, TypeError, ValueError):
        raise ProviderUnavailable("embedding service returned an unexpected body") from None
    if len(vectors) != expected or not vectors or len({len(v) for v in vectors}) != 1:
        raise ProviderUnavailable("embedding service returned the wrong number of vectors")
    return vectors
