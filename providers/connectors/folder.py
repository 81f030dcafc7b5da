"""A server folder as a source: every text, Markdown, HTML and PDF file under it.

Only what really lies under the configured roots may be read, so a user cannot import the
server's own files: the configured path is resolved and checked when the source is
connected and again at every sync, and each file is resolved (symlinks followed) and
checked right before it is read, then opened from its root one component at a time with
``O_NOFOLLOW``, so a symlink swapped in after the check makes the open fail instead of
leaving the root. A file that cannot be read is skipped (and logged); the rest of the
folder still syncs. The cursor maps each path to its SHA-256: unchanged files are skipped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

from domain.errors import BadUserInput, MemoriaError, ProviderUnavailable
from domain.sources import DataSource, SourceBatch, SourceDocument, SourceKind
from providers.connectors.extract import HTML_SUFFIXES, TEXT_SUFFIXES, FileTextExtractor

SUFFIXES = (*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf")
MAX_FILE_BYTES = 20 * 1024 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not block the open

log = logging.getLogger("memoria.sources")


class FileRefused(Exception):
    """One file that may not or cannot be read; the sync skips it."""


class FolderConnector:
    kind = SourceKind.FILES

    def __init__(
        self, *, roots: tuple[str, ...], batch: int = 20, max_file_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self._roots = [Path(os.path.realpath(r)) for r in roots if "\x00" not in r]
        self._extractor = FileTextExtractor()
        self._batch = batch
        self._max_bytes = max_file_bytes

    def _root_of(self, real: Path) -> Path | None:
        return next((r for r in self._roots if real == r or r in real.parents), None)

    def check_path(self, raw: object) -> Path:
        """The folder (or file) a source reads, resolved; ``BadUserInput`` when it is not a
        readable path under a root."""
        details = {"field": "path"}
        if not isinstance(raw, str) or not raw.strip():
            raise BadUserInput("config.path is required", details=details)
        if "\x00" in raw:
            raise BadUserInput("config.path must not contain a NUL character", details=details)
        try:
            real = Path(os.path.realpath(raw))
        except (OSError, ValueError):
            raise BadUserInput("config.path cannot be resolved", details=details) from None
        if self._root_of(real) is None:
            raise BadUserInput(
                "config.path is outside the folders this server may read", details=details
            )
        if not real.exists():
            raise BadUserInput("config.path does not exist", details=details)
        return real

    def read_contained(self, path: Path) -> tuple[bytes, float]:
        """The bytes and modification time of ``path`` if its real location is under a
        root; ``FileRefused`` otherwise, or when it changed into a link, a directory or
        something larger than the limit on the way."""
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError):
            raise FileRefused("cannot be resolved") from None
        root = self._root_of(real)
        if root is None:
            raise FileRefused("links outside the folders this server may read")
        parts = real.relative_to(root).parts
        if not parts:
            raise FileRefused("is not a file")
        try:
            directory = os.open(root, os.O_RDONLY | _DIRECTORY)
            try:
                for name in parts[:-1]:
                    inner = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=directory)
                    os.close(directory)
                    directory = inner
                fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=directory)
            finally:
                os.close(directory)
        except OSError as exc:  # ELOOP: a link appeared since the check; ENOTDIR alike
            raise FileRefused(f"cannot be opened ({exc.strerror or exc})") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FileRefused("is not a regular file")
            if info.st_size > self._max_bytes:
                raise FileRefused(f"is larger than {self._max_bytes} bytes")
            data = handle.read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise FileRefused(f"is larger than {self._max_bytes} bytes")
        return data, info.st_mtime

    def _files(self, folder: Path) -> Iterator[Path]:
        if not folder.is_dir():
            yield folder
            return
        # Symlinked folders are not entered; symlinked files are listed, then checked.
        for current, folders, names in os.walk(folder, followlinks=False):
            folders.sort()
            for name in sorted(names):
                yield Path(current, name)

    def _document(
        self, path: Path, relative: str, digest: str, data: bytes, mtime: float
    ) -> SourceDocument:
        return SourceDocument(
            external_id=f"file:{relative}",
            title=relative,
            text=self._extractor.extract(name=path.name, data=data),
            occurred_at=datetime.fromtimestamp(mtime, tz=UTC),
            url=path.as_uri(),
            version=digest,
            metadata={"file_name": relative},
        )

    async def fetch(
        self, *, source: DataSource, credentials: dict[str, object], cursor: dict[str, object]
    ) -> AsyncIterator[SourceBatch]:
        folder = self.check_path(source.config.get("path", ""))
        seen = dict(cursor.get("files", {}) or {})  # type: ignore[call-overload]
        documents: list[SourceDocument] = []
        try:
            for path in self._files(folder):
                if path.suffix.lower() not in SUFFIXES:
                    continue
                relative = str(path.relative_to(folder)) if path != folder else path.name
                try:
                    data, mtime = self.read_contained(path)
                    digest = hashlib.sha256(data).hexdigest()
                    if seen.get(relative) == digest:
                        continue
                    document = self._document(path, relative, digest, data, mtime)
                except (FileRefused, MemoriaError, ValueError) as exc:
                    reason = exc.message if isinstance(exc, MemoriaError) else str(exc)
                    log.warning("source %s: skipped %s: %s", source.id, relative, reason)
                    continue
                seen[relative] = digest
                documents.append(document)
                if len(documents) >= self._batch:
                    yield SourceBatch(documents=documents, cursor={"files": dict(seen)})
                    documents = []
        except OSError as exc:
            raise ProviderUnavailable(f"reading the folder failed: {exc.strerror or exc}") from None
        yield SourceBatch(documents=documents, cursor={"files": dict(seen)})
