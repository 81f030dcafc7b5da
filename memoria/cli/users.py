"""``memoria user create|list|set-role|set-tier|set-password|delete``: accounts, managed by
the operator."""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from domain.entities import Role, Tier, User
from domain.services.user_admin import UserAdminService
from memoria.cli.common import USAGE, CliError, load_settings, open_runtime, run, table, when
from memoria.settings import Settings

ROLES = [r.value for r in Role]
TIERS = [t.value for t in Tier]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="manage user accounts")
    actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a user (prints a generated password once)")
    create.add_argument("username")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (else one is generated)",
    )
    create.add_argument("--email", help="e-mail address (default USERNAME@localhost.localdomain)")
    create.add_argument("--role", choices=ROLES, default=Role.USER.value)
    create.add_argument(
        "--tier",
        choices=TIERS,
        help="rate-limit and quota tier (default: MEMORIA_DEFAULT_TIER; admins unlimited)",
    )
    create.set_defaults(run=_create)

    listing = actions.add_parser("list", help="list users: username, role, tier, created")
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    listing.set_defaults(run=_list)

    role = actions.add_parser("set-role", help="make a user an admin or a plain user")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(run=_set_role)

    tier = actions.add_parser("set-tier", help="change a user's rate-limit and quota tier")
    tier.add_argument("username")
    tier.add_argument("tier", choices=TIERS)
    tier.set_defaults(run=_set_tier)

    password = actions.add_parser(
        "set-password", help="set a user's password (prints a generated one once)"
    )
    password.add_argument("username")
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (else one is generated)",
    )
    password.set_defaults(run=_set_password)

    delete = actions.add_parser("delete", help="delete a user and everything the user owns")
    delete.add_argument("username")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(run=_delete)


_admin = UserAdminService()


def _read_password() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise CliError("--password-stdin: no password on standard input", USAGE)
    return line


def _create(args: argparse.Namespace) -> int:
    generated = None if args.password_stdin else secrets.token_urlsafe(18)
    password = generated or _read_password()
    settings = load_settings()
    role = Role(args.role)
    default = settings.rate_limits.default_tier
    tier = Tier(args.tier) if args.tier else (Tier.UNLIMITED if role is Role.ADMIN else default)
    email = args.email or f"{args.username.strip()}@localhost.localdomain"
    user = run(_create_user(settings, args.username, email, password, role, tier))
    print(f"Created user {user.username!r} (role {user.role.value}, tier {user.tier.value}).")
    if generated is not None:
        # Shown here once; only its Argon2 hash is stored.
        print(f"Password (shown only once): {generated}")
    _warn_tier_override(settings, user)
    return 0


async def _create_user(
    settings: Settings, username: str, email: str, password: str, role: Role, tier: Tier
) -> User:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        result = await runtime.deps.auth.register(
            uow=uow, username=username, email=email, password=password, role=role, tier=tier
        )
        await uow.commit()
    return result.user


def _set_password(args: argparse.Namespace) -> int:
    generated = None if args.password_stdin else secrets.token_urlsafe(18)
    password = generated or _read_password()
    settings = load_settings()
    user = run(_store_password(settings, args.username, password))
    print(f"Password of {user.username!r} changed.")
    if generated is not None:
        print(f"Password (shown only once): {generated}")
    return 0


async def _store_password(settings: Settings, username: str, password: str) -> User:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        user = await _admin.get(uow=uow, username=username)
        changed = await runtime.deps.auth.set_password(uow=uow, user=user, password=password)
        await uow.commit()
    return changed


def _list(args: argparse.Namespace) -> int:
    settings = load_settings()
    users = run(_all_users(settings))
    overrides = settings.rate_limits.user_tiers
    if args.json:
        rows = [
            {
                "username": u.username,
                "email": u.email,
                "role": u.role.value,
                "tier": u.tier.value,
                "tierOverride": overrides[u.username].value if u.username in overrides else None,
                "disabled": u.disabled,
                "created": u.created_at.isoformat(),
            }
            for u in users
        ]
        print(json.dumps(rows, indent=2))
        return 0
    if not users:
        print("No users.")
        return 0
    print(
        table(
            ["USERNAME", "ROLE", "TIER", "CREATED"],
            [
                [u.username, u.role.value, _tier_cell(u, settings), when(u.created_at)]
                for u in users
            ],
        )
    )
    return 0


def _tier_cell(user: User, settings: Settings) -> str:
    override = settings.rate_limits.user_tiers.get(user.username)
    if override is None or override is user.tier:
        return user.tier.value
    return f"{user.tier.value} (MEMORIA_USER_TIERS: {override.value})"


async def _all_users(settings: Settings) -> list[User]:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        return await _admin.list_users(uow=uow)


def _set_role(args: argparse.Namespace) -> int:
    settings = load_settings()
    user = run(_change(settings, args.username, role=Role(args.role)))
    print(f"{user.username!r} is now {'an' if user.role is Role.ADMIN else 'a'} {user.role.value}.")
    return 0


def _set_tier(args: argparse.Namespace) -> int:
    settings = load_settings()
    user = run(_change(settings, args.username, tier=Tier(args.tier)))
    print(f"{user.username!r} is now on the {user.tier.value} tier.")
    _warn_tier_override(settings, user)
    return 0


async def _change(
    settings: Settings, username: str, *, role: Role | None = None, tier: Tier | None = None
) -> User:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        if role is not None:
            user = await _admin.set_role(uow=uow, username=username, role=role)
        else:
            assert tier is not None
            user = await _admin.set_tier(uow=uow, username=username, tier=tier)
        await uow.commit()
    return user


def _warn_tier_override(settings: Settings, user: User) -> None:
    """The environment's per-user tiers win over the stored one: say so, or the change
    would look like it did nothing."""
    override = settings.rate_limits.user_tiers.get(user.username)
    if override is not None and override is not user.tier:
        print(
            f"memoria: note: MEMORIA_USER_TIERS sets {user.username!r} to {override.value}, "
            f"which takes precedence over the stored tier",
            file=sys.stderr,
        )
    if user.role is Role.ADMIN and user.tier is not Tier.UNLIMITED:
        print(
            "memoria: note: administrators are never rate limited, whatever their tier",
            file=sys.stderr,
        )


def _delete(args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("refusing to delete without confirmation: pass --yes", USAGE)
        answer = input(
            f"Delete user {args.username!r} and all of their memories, conversations and keys? "
            "Type the username to confirm: "
        )
        if answer.strip() != args.username.strip():
            raise CliError("not confirmed; nothing was deleted")
    settings = load_settings()
    removed = run(_delete_user(settings, args.username))
    fields = f"{removed} memory field{'' if removed == 1 else 's'}"
    print(f"Deleted user {args.username.strip()!r} and everything they owned ({fields}).")
    return 0


async def _delete_user(settings: Settings, username: str) -> int:
    async with open_runtime(settings) as runtime, runtime.deps.uow_factory() as uow:
        deleted = await _admin.delete(uow=uow, username=username)
        await uow.commit()  # the fields' vector files go with the commit
    return len(deleted.field_ids)
