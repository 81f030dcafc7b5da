"""The ``memoria`` command line: the server, and the operator's tools beside it.

One module per command group registers its subcommands; each sets ``run`` to a function
of the parsed arguments returning the exit status. Failures are one line on standard
error: status 2 for usage (bad arguments or settings), 1 for a command that could not do
what was asked.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from memoria import transfer_commands
from memoria.cli import keys, maintenance, serve, users
from memoria.cli.common import FAILURE, USAGE, CliError
from memoria.observability.logging_setup import configure_logging

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memoria", description="Memoria memory server")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve.register(sub)
    users.register(sub)
    keys.register(sub)
    maintenance.register(sub)
    transfer_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (status 2) or --help (0)
        return exc.code if isinstance(exc.code, int) else USAGE
    _configure_logging(server=getattr(args, "server_logs", False))
    try:
        return int(args.run(args))
    except CliError as exc:
        return _fail(exc.message, exc.status)
    except KeyboardInterrupt:
        return _fail("interrupted", FAILURE)
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing to report to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILURE
    except Exception as exc:  # noqa: BLE001  # every failure becomes one line, never a traceback
        return _fail(*_explain(exc))


def _fail(message: str, status: int) -> int:
    print(f"memoria: {message}", file=sys.stderr)
    return status


def _explain(exc: Exception) -> tuple[str, int]:
    """A one-line message and status for an error raised below the command."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from domain.errors import BadUserInput, Conflict, MemoriaError
    from memoria.settings import SettingsError

    if isinstance(exc, SettingsError):
        return f"invalid settings: {exc}", USAGE
    if isinstance(exc, Conflict):
        return exc.message, FAILURE
    if isinstance(exc, BadUserInput):
        return exc.message, USAGE
    if isinstance(exc, MemoriaError):
        return exc.message, FAILURE
    if isinstance(exc, DBAPIError):
        # Only the driver's own message: the statement and its parameters may hold data.
        first = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else ""
        return f"database error: {type(exc.orig).__name__}: {first}", FAILURE
    if isinstance(exc, SQLAlchemyError):
        return f"database unusable: {type(exc).__name__}: {exc}", FAILURE
    if isinstance(exc, OSError):  # a refused connection, an unreadable data directory...
        return f"{type(exc).__name__}: {exc}", FAILURE
    logging.getLogger("memoria").debug("unexpected failure", exc_info=exc)
    return f"unexpected error: {type(exc).__name__}: {exc}", FAILURE


def _configure_logging(*, server: bool) -> None:
    # The server logs its life at INFO; an operator command only says what went wrong.
    # `serve` reconfigures with the settings' format (MEMORIA_LOG_FORMAT) once they are read.
    configure_logging("text", level=logging.INFO if server else logging.WARNING)
