"""``memoria_client/_generated`` is what tools/generate_client.py makes of schema.graphql,
and every generated operation is valid against the schema."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from graphql import build_schema, parse, validate

import memoria_client._generated.documents as documents
from memoria_client import AsyncMemoriaClient, MemoriaClient

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "memoria_client" / "_generated"
REGENERATE = ".venv/bin/python tools/generate_client.py"


def test_generated_client_matches_schema(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_client.py"), "--output", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    fresh = {p.name: p.read_text() for p in tmp_path.glob("*.py")}
    committed = {p.name: p.read_text() for p in GENERATED.glob("*.py")}
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert not stale, f"memoria_client/_generated is stale ({', '.join(stale)}): run `{REGENERATE}`"


def test_every_root_field_has_a_valid_operation_and_methods() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    roots = [schema.query_type, schema.mutation_type, schema.subscription_type]
    names = [name for root in roots if root is not None for name in root.fields]
    assert len(names) >= 50
    for name in names:
        method = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        constant = method.upper()
        document = getattr(documents, constant)
        assert validate(schema, parse(document)) == [], name
        assert callable(getattr(MemoriaClient, method)), method
        assert callable(getattr(AsyncMemoriaClient, method)), method


CLASHING = """
type Query { event: Event! }
type Done { message: Note! code: String! }
type Failed { message: String! code: String! old: Int @deprecated(reason: "gone") }
type Note { text: String! }
union Event = Done | Failed
"""


def test_union_members_with_clashing_fields_get_aliases() -> None:
    spec = importlib.util.spec_from_file_location(
        "client_schema", ROOT / "tools" / "client_schema.py"
    )
    assert spec is not None
    assert spec.loader is not None
    client_schema = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = client_schema  # its dataclasses look their module up there
    spec.loader.exec_module(client_schema)
    schema = build_schema(CLASHING)
    (event,) = client_schema.root_fields(schema)
    assert validate(schema, parse(event.document)) == []
    assert "doneMessage: message {" in event.document
    assert "failedMessage: message" in event.document
    assert "old" not in event.document  # deprecated fields are never selected
    assert "  code\n" in event.document  # same type on both members: no alias
