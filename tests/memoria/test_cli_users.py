"""`memoria user ...` against real SQLite and PostgreSQL: accounts created, listed, changed
and deleted through the same services the server uses, with one-line errors and the
documented exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli, deployment_env


@pytest.fixture
def cli(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    running = Cli(deployment_env(database_url, tmp_path, default_sqlite=True), monkeypatch, capsys)
    running.ok("migrate")
    return running


def test_user_lifecycle(cli: Cli) -> None:
    created = cli.ok("user", "create", "alice")
    assert "Created user 'alice' (role user, tier unlimited)." in created  # MEMORIA_DEFAULT_TIER
    password = created.split("Password (shown only once): ")[1].strip()
    assert len(password) >= 20
    cli.ok("user", "create", "root", "--role", "admin")  # admins default to unlimited
    cli.ok("user", "create", "carol", "--tier", "standard", "--email", "Carol@Example.com")

    listing = cli.ok("user", "list").splitlines()
    assert listing[0].split() == ["USERNAME", "ROLE", "TIER", "CREATED"]
    rows = {line.split()[0]: line.split()[1:3] for line in listing[1:]}
    assert rows == {
        "alice": ["user", "unlimited"],
        "root": ["admin", "unlimited"],
        "carol": ["user", "standard"],
    }
    assert password not in "".join(listing)

    assert "'alice' is now an admin." in cli.ok("user", "set-role", "alice", "admin")
    assert "premium tier" in cli.ok("user", "set-tier", "carol", "premium")
    by_name = {u["username"]: u for u in json.loads(cli.ok("user", "list", "--json"))}
    assert by_name["alice"]["role"] == "admin"
    assert by_name["carol"]["tier"] == "premium"
    assert by_name["carol"]["email"] == "carol@example.com"
    assert "password" not in json.dumps(by_name).lower()

    assert "Deleted user 'carol'" in cli.ok("user", "delete", "carol", "--yes")
    assert "carol" not in cli.ok("user", "list")


def test_errors_are_one_line_with_their_status(cli: Cli) -> None:
    cli.ok("user", "create", "alice")
    failures = [
        (("user", "create", "alice"), 1, "already registered"),
        (("user", "set-tier", "nobody", "premium"), 1, "no user named 'nobody'"),
        (("user", "delete", "nobody", "--yes"), 1, "no user named 'nobody'"),
        (("user", "create", "no spaces allowed"), 2, "username must be"),
        (("user", "set-tier", "alice", "gold"), 2, "invalid choice: 'gold'"),
        (("user", "frobnicate"), 2, "invalid choice: 'frobnicate'"),
    ]
    for args, status, message in failures:
        result = cli(*args)
        assert result.status == status, (args, result)
        assert message in result.err
        assert "Traceback" not in result.err
    # Deleting without --yes and without a terminal to confirm on is refused.
    refused = cli("user", "delete", "alice")
    assert refused.status == 2
    assert "--yes" in refused.err
    assert "alice" in cli.ok("user", "list")


def test_the_last_administrator_stays(cli: Cli) -> None:
    cli.ok("user", "create", "root", "--role", "admin")
    for args in (("user", "set-role", "root", "user"), ("user", "delete", "root", "--yes")):
        result = cli(*args)
        assert result.status == 1
        assert "last administrator" in result.err
    cli.ok("user", "create", "second", "--role", "admin")
    cli.ok("user", "set-role", "root", "user")
    assert "admin" not in cli.ok("user", "list").split("root")[1].splitlines()[0]


def test_settings_tier_override_is_shown(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_USER_TIERS", "alice=premium")
    result = cli("user", "create", "alice")
    assert result.status == 0
    assert "MEMORIA_USER_TIERS sets 'alice' to premium" in result.err
    assert "unlimited (MEMORIA_USER_TIERS: premium)" in cli.ok("user", "list")


def test_new_users_get_the_default_tier(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORIA_DEFAULT_TIER", "free")
    assert "(role user, tier free)" in cli.ok("user", "create", "dora")
    assert "(role admin, tier unlimited)" in cli.ok("user", "create", "root2", "--role", "admin")


def test_user_commands_need_a_current_schema(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fresh = Cli(deployment_env(database_url, tmp_path, default_sqlite=True), monkeypatch, capsys)
    result = fresh("user", "list")
    assert result.status == 1
    assert "run `memoria migrate` first" in result.err


def test_password_from_stdin_is_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(deployment_env("sqlite", tmp_path, default_sqlite=True), monkeypatch, capsys)
    cli.ok("migrate")
    secret = "a-password-typed-once"
    done = cli.subprocess("user", "create", "dana", "--password-stdin", stdin=secret + "\n")
    assert done.status == 0, done
    assert "Created user 'dana'" in done.out
    assert secret not in done.out + done.err
    assert "shown only once" not in done.out
    empty = cli.subprocess("user", "create", "erin", "--password-stdin", stdin="")
    assert empty.status == 2
    assert "no password on standard input" in empty.err
