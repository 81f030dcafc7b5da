"""``memoria_client`` stands alone: importing it loads nothing of the server."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_PACKAGES = (
    "domain", "persistence", "graph", "providers", "rest_compat", "memoria",
    "strawberry", "sqlalchemy", "starlette", "uvicorn", "graphql",
)  # fmt: skip

PROBE = """
import json, sys
import memoria_client
memoria_client.MemoriaClient("http://127.0.0.1:1").close()
print(json.dumps(sorted(sys.modules)))
"""


def test_import_loads_no_server_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(done.stdout)
    assert "memoria_client" in loaded
    leaked = [m for m in loaded if m.split(".")[0] in SERVER_PACKAGES]
    assert not leaked, leaked
