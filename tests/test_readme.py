"""The README's examples run as written: every GraphQL document in it is valid against the
schema, and its curl walk-through works against a real server, each command sent as curl
would send it (arguments split by shell quoting rules, ``$VARS`` substituted, the
``| python3 -c`` extractions run by Python)."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_schema, parse, validate

from tests.conftest import RunningServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SCHEMA = build_schema((ROOT / "schema.graphql").read_text())


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _commands(block: str) -> list[str]:
    """Logical shell commands: comments dropped, lines joined while a quote is open."""
    commands: list[str] = []
    pending = ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending)
        except ValueError:  # an open quote: the command goes on
            continue
        commands.append(pending)
        pending = ""
    assert not pending, f"unterminated command: {pending}"
    return commands


def _parse(command: str) -> tuple[str | None, list[str], str | None]:
    """``[VAR=$(]curl ...[ | python3 -c CODE)]`` as (VAR, curl's words, CODE)."""
    assignment = re.match(r"([A-Z]+)=\$\((.*)\)$", command, flags=re.S)
    inner = assignment.group(2) if assignment else command
    curl, _, extract = inner.partition(" | python3 -c ")
    code = shlex.split(extract)[0] if extract else None
    return (assignment.group(1) if assignment else None), shlex.split(curl), code


def _curl_commands() -> list[str]:
    return [c for b in _blocks("sh") for c in _commands(b) if "curl " in c]


def _curl_bodies() -> list[dict[str, Any]]:
    bodies = []
    for command in _curl_commands():
        words = _parse(command)[1]
        raw = words[words.index("-d") + 1]
        bodies.append(json.loads(re.sub(r"\$([A-Z]+)", r"\1", raw)))
    return bodies


def test_the_readme_has_curl_examples_and_graphql_documents() -> None:
    assert len(_curl_bodies()) >= 6
    assert _blocks("graphql")


@pytest.mark.parametrize(
    "document",
    [b["query"] for b in _curl_bodies()] + _blocks("graphql"),
    ids=lambda d: " ".join(d.split())[:60],
)
def test_every_document_is_valid_against_the_schema(document: str) -> None:
    errors = validate(SCHEMA, parse(document))
    assert not errors, [e.message for e in errors]


def _substitute(word: str, env: dict[str, str]) -> str:
    return re.sub(r"\$([A-Z]+)", lambda m: env[m.group(1)], word)


def _curl(words: list[str], env: dict[str, str]) -> httpx.Response:
    """``curl -s[N] URL -H ... -d BODY``: what the walk-through uses, nothing more."""
    headers: dict[str, str] = {}
    url = body = None
    args = iter(_substitute(w, env) for w in words[1:])
    for arg in args:
        if arg in ("-s", "-sN"):
            continue
        if arg == "-H":
            name, _, value = next(args).partition(": ")
            headers[name] = value
        elif arg == "-d":
            body = next(args)
        else:
            url = arg
    assert url, words
    assert body is not None, words
    return httpx.post(url, content=body.encode(), headers=headers, timeout=60)


async def test_the_curl_walk_through_runs_as_written(server: RunningServer) -> None:
    env = {"URL": f"{server.url}/graphql"}  # the server under test, not the README's port
    responses: list[httpx.Response] = []
    for command in _curl_commands():
        variable, words, code = _parse(command)
        response = await asyncio.to_thread(_curl, words, env)
        assert response.status_code == 200, response.text
        responses.append(response)
        if variable and code:
            out = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", code],
                input=response.text,
                capture_output=True,
                text=True,
            )
            assert out.returncode == 0, out.stderr
            env[variable] = out.stdout.strip()
        elif "text/event-stream" not in response.headers.get("content-type", ""):
            assert not response.json().get("errors"), response.text
    search = next(r.json() for r in responses if "searchMemories" in r.text)
    assert "Miso" in search["data"]["searchMemories"][0]["memory"]["content"]
    streamed = responses[-1].text
    assert "ChatDelta" in streamed, streamed
    assert "ChatCompleted" in streamed, streamed


async def test_the_python_examples_run_as_written(server: RunningServer) -> None:
    """The client and openai examples, in order, as separate programs (the later ones log in
    as the user the first one registered)."""
    examples = [b for b in _blocks("python") if "memoria_client" in b]
    assert len(examples) >= 3
    outputs = []
    for example in examples:
        program = example.replace("http://127.0.0.1:8000", server.url)
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", program],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert "Miso" in outputs[0]  # the search hit, and the chat answering from it
    assert "memoria-extractive-no-llm" in outputs[2]
