"""A server folder as a source: every text, Markdown, HTML and PDF file under it.

Only folders under the configured roots may be read, so a user cannot import the
server's own files. The cursor maps each path to its SHA-256: unchanged files are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from domain.errors import BadUserInput
from domain.sources import DataSource, SourceBatch, SourceDocument, SourceKind
from providers.connectors.extract import HTML_SUFFIXES, TEXT_SUFFIXES, FileTextExtractor

SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf")


class FolderConnector:
    kind = SourceKind.FILES

    def __init__(self, *, roots: tuple[str, ...], batch: int = 20) -> None:
        self._roots = [Path(r).resolve() for r in roots]
        self._extractor = FileTextExtractor()
        self._batch = batch

    def _folder(self, raw: str) -> Path:
        path = Path(raw).resolve()
        if not any(path == root or root in path.parents for root in self._roots):
            raise BadUserInput("config.path is outside the folders this server may read")
        if not path.exists():
            raise BadUserInput("config.path does not exist")
        return path

    async def fetch(
        self, *, source: DataSource, credentials: dict[str, object], cursor: dict[str, object]
    ) -> AsyncIterator[SourceBatch]:
        folder = self._folder(str(source.config.get("path", "")))
        files = (
            [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file())
        )
        seen = dict(cursor.get("files", {}) or {})  # type: ignore[call-overload]
        documents: list[SourceDocument] = []
        for path in files:
            if path.suffix.lower() not in SUFFIXES:
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            relative = str(path.relative_to(folder)) if path != folder else path.name
            if seen.get(relative) == digest:
                continue
            seen[relative] = digest
            documents.append(
                SourceDocument(
                    external_id=f"file:{relative}",
                    title=relative,
                    text=self._extractor.extract(name=path.name, data=data),
                    occurred_at=datetime.fromtimestamp(path.stat().st_mtime, tz=UTC),
                    url=path.as_uri(),
                    version=digest,
                    metadata={"file_name": relative},
                )
            )
            if len(documents) >= self._batch:
                yield SourceBatch(documents=documents, cursor={"files": dict(seen)})
                documents = []
        yield SourceBatch(documents=documents, cursor={"files": dict(seen)})
