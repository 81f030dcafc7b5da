"""Which account and which memory field of this database an imported record belongs to.

Users are matched by username, ignoring case as registration does (after ``--user-map
old=new``): an existing account receives
the data, whatever its id. A user the database lacks is created without a usable password
(an administrator sets one), keeping the exported id unless it was renamed or the id is
taken. Fields are matched by id, then by name within the account (the "default" field a
server made for the account merges with the exported one); a missing field is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.entities import Role, Tier, User, new_id
from domain.policy import check_username
from domain.ports import Embedder
from memoria.transfer.records import RecordError
from memoria.transfer.unit_of_work import TransferUnitOfWork
from persistence.tables.accounts import users
from persistence.tables.memories import memory_fields

# Not an argon2 hash: verification always fails, so nobody can log in until an
# administrator sets a password (the same convention as "!" in /etc/shadow).
UNUSABLE_PASSWORD = "!imported"  # noqa: S105  # a marker that matches no password


class AccountMap:
    """Exported user and field ids -> ids in this database; a few entries per account."""

    def __init__(self, *, renames: Mapping[str, str], embedder: Embedder) -> None:
        self._renames = dict(renames)
        self._embedder = embedder
        self._users: dict[str, str] = {}
        self._fields: dict[str, str] = {}
        self.created_users: list[str] = []

    def user_id(self, exported: object, line: int) -> str:
        found = self._users.get(str(exported))
        if found is None:
            raise RecordError(line, f"user {exported!r} has no user record before this line")
        return found

    def field_id(self, exported: object, line: int) -> str:
        found = self._fields.get(str(exported))
        if found is None:
            raise RecordError(line, f"field {exported!r} has no field record before this line")
        return found

    def known_field(self, exported: str | None) -> str | None:
        return None if exported is None else self._fields.get(exported)

    async def add_user(self, uow: TransferUnitOfWork, values: dict[str, Any]) -> bool:
        """Map the exported user to an account here; True if one had to be created."""
        exported, name = values["id"], values["username"]
        renamed = self._renames.get(name, name)
        existing = await uow.users.by_login(renamed)
        # by_login also matches e-mail addresses; an export names its users by username.
        if existing is not None and existing.username.lower() == renamed.lower():
            self._users[exported] = existing.id
            return False
        if renamed == name and await uow.users.get(exported) is not None:
            self._users[exported] = exported  # the same account, renamed since the export
            return False
        check_username(renamed)  # a --user-map target is typed by hand
        taken = await uow.rows.existing_ids(users, [exported])
        email = values["email"]
        if renamed != name or await uow.users.by_login(email) is not None:
            email = f"{renamed}@imported.invalid"  # .invalid: reserved, never delivered
        user = User(
            id=new_id() if renamed != name or taken else exported,
            username=renamed,
            email=email,
            password_hash=UNUSABLE_PASSWORD,
            role=Role(values["role"]),
            tier=Tier(values["tier"]),
            balance_micros=0,
            created_at=values["created_at"],
            disabled=values["disabled"],
        )
        await uow.users.add(user)
        self._users[exported] = user.id
        self.created_users.append(renamed)
        return True

    async def add_field(self, uow: TransferUnitOfWork, values: dict[str, Any], line: int) -> bool:
        """Map the exported field to one here; True if it had to be created."""
        exported = values["id"]
        owner = self.user_id(values["user_id"], line)
        same = await uow.fields.get(exported, user_id=owner)
        if same is None:
            same = await uow.fields.by_name(values["name"], user_id=owner)
        if same is not None:
            self._fields[exported] = same.id
            return False
        row = dict(values, user_id=owner)
        if await uow.rows.existing_ids(memory_fields, [exported]):
            row["id"] = new_id()  # another account's field has this id in this database
        if values["embedder"] != self._embedder.name:
            # Its memories are re-embedded as they arrive (see the importer).
            row.update(embedder=self._embedder.name, dimension=self._embedder.dimension)
        await uow.rows.insert(memory_fields, [row])
        self._fields[exported] = row["id"]
        return True
