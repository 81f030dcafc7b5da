"""Checks a data source's target when it is connected: the mail host against the outbound
policy, the folder against the readable roots. Satisfies
:class:`domain.ports.security.SourceTargetCheck`; the connectors check again at every sync."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.connectors.folder import FolderConnector
from providers.outbound.guard import OutboundGuard


class SourceTargets:
    def __init__(self, *, guard: OutboundGuard, folders: FolderConnector) -> None:
        self._guard = guard
        self._folders = folders

    async def check(self, kind: str, config: Mapping[str, Any]) -> None:
        if kind == "email":
            await self._guard.check_host(
                str(config.get("host", "")), int(config.get("port", 993)), field="host"
            )
        elif kind == "files" and config.get("path"):
            self._folders.check_path(config["path"])
