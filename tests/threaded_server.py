"""A real server in its own thread and event loop, for synchronous clients (schemathesis,
hypothesis) that cannot share the test's loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import uvicorn


class ThreadedServer:
    """Uvicorn in its own thread and loop, for synchronous clients (schemathesis)."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
