"""Running the ``memoria`` command line against one test deployment.

In-process (``main([...])``, fast) for most commands, as a real subprocess where standard
input or a separate process matters. Either way the command reads its settings from the
environment, exactly as an operator's shell would hand them over.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from memoria.cli import main


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str


def deployment_env(database_url: str, tmp_path: Path, *, default_sqlite: bool) -> dict[str, str]:
    """The environment of one deployment. ``default_sqlite``: SQLite in the data directory
    (``memoria.db``, made 0600 like ``memoria serve`` does) instead of ``database_url``'s file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEMORIA_", "DATABASE_URL"))}
    env.update(
        MEMORIA_DATA_DIR=str(tmp_path / "data"),
        MEMORIA_EMBEDDER="hashing",
        MEMORIA_ENV="test",
    )
    if not (default_sqlite and database_url.startswith("sqlite")):
        env["DATABASE_URL"] = database_url
    return env


class Cli:
    """``memoria`` for one deployment; ``cli("user", "list")`` runs it in-process."""

    def __init__(
        self,
        env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.env = env
        self._capsys = capsys
        # The in-process runs read os.environ like the real command: it is this deployment's.
        for name in list(os.environ):
            if name not in env:
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    @property
    def data_dir(self) -> Path:
        return Path(self.env["MEMORIA_DATA_DIR"])

    def __call__(self, *args: str) -> Result:
        self._capsys.readouterr()
        status = main(list(args))
        captured = self._capsys.readouterr()
        return Result(status, captured.out, captured.err)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.status == 0, result
        return result.out

    def subprocess(self, *args: str, stdin: str | None = None) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "memoria.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)
