"""``memoria key create|list|revoke``: a user's API keys, through the same service (and so
the same hashing) as the GraphQL ``createApiKey`` mutation."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from domain.entities import ApiKey
from domain.services.auth import NewApiKey
from domain.services.user_admin import UserAdminService
from memoria.cli.common import CliError, load_settings, open_runtime, run, table, when
from memoria.settings import Settings

_admin = UserAdminService()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = sub.add_parser("key", help="manage a user's API keys")
    actions = key.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create an API key (the key is printed once)")
    create.add_argument("username")
    create.add_argument("--name", default="cli", help="a label to recognise the key by")
    create.set_defaults(run=_create)

    listing = actions.add_parser("list", help="list a user's API keys (never the keys)")
    listing.add_argument("username")
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    listing.set_defaults(run=_list)

    revoke = actions.add_parser("revoke", help="revoke an API key at once")
    revoke.add_argument("username")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id or prefix (see key list)")
    revoke.set_defaults(run=_revoke)


def _create(args: argparse.Namespace) -> int:
    created = run(_create_key(load_settings(), args.username, args.name))
    # The key alone on standard output, so `KEY=$(memoria key create alice)` works.
    print(created.secret)
    print(
        f"Created API key {created.key.id} ({created.key.prefix}, {created.key.name!r}) "
        f"for {args.username.strip()!r}; it is shown only once.",
        file=sys.stderr,
    )
    return 0


async def _create_key(settings: Settings, username: str, name: str) -> NewApiKey:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        actor = await _admin.actor_for(uow=uow, username=username)
        created = await runtime.deps.auth.create_api_key(uow=uow, actor=actor, name=name)
        await uow.commit()
    return created


def _list(args: argparse.Namespace) -> int:
    keys = run(_keys(load_settings(), args.username))
    if args.json:
        print(json.dumps([_key_json(k) for k in keys], indent=2))
        return 0
    if not keys:
        print(f"{args.username.strip()!r} has no API keys.")
        return 0
    rows = [
        [k.id, k.prefix, k.name, when(k.created_at), when(k.last_used_at), when(k.revoked_at)]
        for k in keys
    ]
    print(table(["ID", "PREFIX", "NAME", "CREATED", "LAST USED", "REVOKED"], rows))
    return 0


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _key_json(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "created": _iso(key.created_at),
        "lastUsed": _iso(key.last_used_at),
        "revoked": _iso(key.revoked_at),
    }


async def _keys(settings: Settings, username: str) -> list[ApiKey]:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        actor = await _admin.actor_for(uow=uow, username=username)
        return await runtime.deps.auth.list_api_keys(uow=uow, actor=actor)


def _revoke(args: argparse.Namespace) -> int:
    key, was_revoked = run(_revoke_key(load_settings(), args.username, args.key_id.strip()))
    if was_revoked:
        print(f"API key {key.id} ({key.prefix}) was already revoked.")
    else:
        print(f"Revoked API key {key.id} ({key.prefix}, {key.name!r}).")
    return 0


async def _revoke_key(settings: Settings, username: str, key_ref: str) -> tuple[ApiKey, bool]:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        actor = await _admin.actor_for(uow=uow, username=username)
        keys = await runtime.deps.auth.list_api_keys(uow=uow, actor=actor)
        matches = [k for k in keys if key_ref in (k.id, k.prefix)]
        if len(matches) != 1:
            # Ids are unique; two keys sharing a prefix (8 random hex digits) need the id.
            found = "no API key" if not matches else "several API keys"
            raise CliError(f"{username.strip()!r} has {found} with id or prefix {key_ref!r}")
        key = matches[0]
        await runtime.deps.auth.revoke_api_key(uow=uow, actor=actor, key_id=key.id)
        await uow.commit()
    return key, key.revoked_at is not None
