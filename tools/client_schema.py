"""What tools/generate_client.py reads from the schema: Python names and types, value
conversions, default selections and the root fields with their parameters and documents.

The rules (see generate_client.py for the whole picture): one fixed default selection per
object type; fields with arguments only on the object a query returns directly, their
arguments becoming ``<field>_<argument>`` parameters; a sole ``input: SomeInput!`` argument
spread into parameters; union members' clashing fields aliased ``<member><Field>``.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from graphql import (
    BooleanValueNode,
    EnumValueNode,
    FloatValueNode,
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    StringValueNode,
    ValueNode,
    get_named_type,
    is_leaf_type,
)

DOCUMENT_WIDTH = 96  # lines of GraphQL documents
WIDTH = 92  # docstring text width, leaving room for indentation under ruff's 100

SCALARS = {
    "ID": "str",
    "String": "str",
    "Int": "int",
    "Float": "float",
    "Boolean": "bool",
    "DateTime": "datetime",
    "JSON": "JsonValue",
}
PARSE_SCALAR = {
    "ID": "str({})",
    "String": "str({})",
    "Int": "int({})",
    "Float": "float({})",
    "Boolean": "bool({})",
    "DateTime": "parse_datetime({})",
    "JSON": "{}",
}
DUMP_SCALAR = {"DateTime": "format_datetime({})"}
SECRET_LIKE = re.compile(r"pas+wo?r?d|pass(phrase)?|pwd|token|secrete?", re.IGNORECASE)
# Names the method bodies use for their own locals.
RESERVED = {"self", "data", "variables"}


class SchemaNotSupported(Exception):
    """The schema uses something this generator has no rule for; extend the generator."""


def snake(name: str) -> str:
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return f"{text}_" if keyword.iskeyword(text) else text


def constant(name: str) -> str:
    return snake(name).rstrip("_").upper()


def pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def docstring(text: str | None, indent: str) -> str:
    """A docstring block (or nothing), wrapped to fit the line length."""
    if not text:
        return ""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    paragraphs = [p.strip() for p in text.strip().split("\n\n")]
    wrapped = [textwrap.fill(" ".join(p.split()), WIDTH - len(indent)) for p in paragraphs]
    body = "\n\n".join(wrapped).replace("\n", "\n" + indent).replace(f"\n{indent}\n", "\n\n")
    if "\n" not in body and len(body) + len(indent) + 6 <= 100:
        return f'{indent}"""{body}"""\n'
    return f'{indent}"""{body}\n{indent}"""\n'


# ---- Python types and value conversions -------------------------------------------------


def py_type(gql_type: GraphQLInputType | GraphQLOutputType, *, given: bool = False) -> str:
    """The Python annotation; ``given`` for values the caller passes (lists as Sequence)."""
    if isinstance(gql_type, GraphQLNonNull):
        return _py_type_of(gql_type.of_type, given)
    inner = _py_type_of(gql_type, given)
    return inner if inner == "JsonValue" else f"{inner} | None"


def _py_type_of(gql_type: GraphQLInputType | GraphQLOutputType, given: bool) -> str:
    if isinstance(gql_type, GraphQLList):
        container = "Sequence" if given else "list"
        return f"{container}[{py_type(gql_type.of_type, given=given)}]"
    if isinstance(gql_type, GraphQLScalarType):
        if gql_type.name not in SCALARS:
            raise SchemaNotSupported(f"scalar {gql_type.name} has no Python type")
        return SCALARS[gql_type.name]
    named: GraphQLNamedType = gql_type  # type: ignore[assignment]
    return named.name


def parse_expr(gql_type: GraphQLOutputType, expr: str, depth: int = 0) -> str:
    """A Python expression turning the JSON value ``expr`` into the typed value."""
    if isinstance(gql_type, GraphQLNonNull):
        return parse_of(gql_type.of_type, expr, depth)
    inner = parse_of(gql_type, expr, depth)
    return inner if inner == expr else f"None if {expr} is None else {inner}"


def parse_of(gql_type: GraphQLOutputType, expr: str, depth: int) -> str:
    if isinstance(gql_type, GraphQLList):
        item = f"item{depth}"
        return f"[{parse_expr(gql_type.of_type, item, depth + 1)} for {item} in {expr}]"
    if isinstance(gql_type, GraphQLScalarType):
        return PARSE_SCALAR[gql_type.name].format(expr)
    if isinstance(gql_type, GraphQLEnumType):
        return f"{gql_type.name}({expr})"
    if isinstance(gql_type, GraphQLObjectType):
        return f"{gql_type.name}.from_json({expr})"
    if isinstance(gql_type, GraphQLUnionType):
        return f"parse_{snake(gql_type.name)}({expr})"
    raise SchemaNotSupported(f"output type {gql_type} is not supported")


def dump_expr(gql_type: GraphQLInputType, expr: str, depth: int = 0) -> str:
    """A Python expression turning the typed value ``expr`` into JSON."""
    if isinstance(gql_type, GraphQLNonNull):
        return _dump_of(gql_type.of_type, expr, depth)
    inner = _dump_of(gql_type, expr, depth)
    return inner if inner == expr else f"None if {expr} is None else {inner}"


def _dump_of(gql_type: GraphQLInputType, expr: str, depth: int) -> str:
    if isinstance(gql_type, GraphQLList):
        item = f"item{depth}"
        inner = dump_expr(gql_type.of_type, item, depth + 1)
        return expr if inner == item else f"[{inner} for {item} in {expr}]"
    if isinstance(gql_type, GraphQLScalarType):
        return DUMP_SCALAR.get(gql_type.name, "{}").format(expr)
    if isinstance(gql_type, GraphQLEnumType):
        return f"{expr}.value"
    if isinstance(gql_type, GraphQLInputObjectType):
        return f"{expr}.to_json()"
    raise SchemaNotSupported(f"input type {gql_type} is not supported")


@dataclass(frozen=True)
class Default:
    """A Python default, as source text."""

    source: str


def python_default(
    gql_type: GraphQLInputType, node: ValueNode | None, *, has_default: bool
) -> Default | None:
    """The schema default as Python source; ``None`` when the value is required."""
    if not has_default or node is None:
        return None if isinstance(gql_type, GraphQLNonNull) else Default("None")
    if isinstance(node, NullValueNode):
        return Default("None")
    if isinstance(node, StringValueNode):
        return Default(repr(node.value))
    if isinstance(node, IntValueNode):
        return Default(str(int(node.value)))
    if isinstance(node, FloatValueNode):
        return Default(repr(float(node.value)))
    if isinstance(node, BooleanValueNode):
        return Default("True" if node.value else "False")
    if isinstance(node, EnumValueNode):
        return Default(f"{get_named_type(gql_type).name}.{node.value}")
    if isinstance(node, ListValueNode) and not node.values:
        return Default("()")  # lists are given as Sequence: an immutable default
    raise SchemaNotSupported(f"default value {node} is not supported")


def default_of(value: GraphQLArgument | GraphQLInputField) -> Default | None:
    node = value.ast_node.default_value if value.ast_node is not None else None
    return python_default(value.type, node, has_default=node is not None)


# ---- Selections and documents ----------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One method parameter and the variable it fills."""

    name: str  # Python parameter name
    variable: str  # GraphQL variable name
    gql_type: GraphQLInputType
    default: Default | None
    description: str | None = None

    @property
    def annotation(self) -> str:
        return py_type(self.gql_type, given=True)

    @property
    def signature(self) -> str:
        if self.default is None:
            return f"{self.name}: {self.annotation}"
        return f"{self.name}: {self.annotation} = {self.default.source}"


def selectable(named: GraphQLObjectType) -> dict[str, GraphQLField]:
    """The fields a default selection may take: deprecated ones never (their replacement
    is there, and old names can clash, like ``ChatFailed.message``)."""
    return {n: f for n, f in named.fields.items() if f.deprecation_reason is None}


def union_aliases(union: GraphQLUnionType) -> dict[str, dict[str, str]]:
    """Per member, ``alias -> field`` for fields that several members have with different
    types (``ChatCompleted.message: Message!``, ``ChatFailed.message: String!``): GraphQL
    cannot merge those under one response key, so each gets ``<member><Field>``."""
    types: dict[str, set[str]] = {}
    for member in union.types:
        for name, member_field in selectable(member).items():
            if not member_field.args:
                types.setdefault(name, set()).add(str(member_field.type))
    clashing = {name for name, found in types.items() if len(found) > 1}
    return {
        member.name: {
            f"{member.name[:1].lower()}{member.name[1:]}{pascal(name)}": name
            for name in selectable(member)
            if name in clashing
        }
        for member in union.types
    }


def selection(
    named: GraphQLNamedType,
    depth: int,
    path: tuple[str, ...],
    root_params: list[Param] | None,
    aliases: dict[str, str] | None = None,
) -> list[str]:
    """The default selection of ``named``; ``root_params`` collects the arguments of fields
    that take some (given only for the object a query returns directly); ``aliases`` gives
    some fields another response key (``field -> alias``)."""
    pad = "  " * depth
    lines: list[str] = []
    if isinstance(named, GraphQLUnionType):
        lines.append(f"{pad}__typename")
        by_member = union_aliases(named)
        for member in named.types:
            lines.append(f"{pad}... on {member.name} {{")
            aliased = {name: alias for alias, name in by_member[member.name].items()}
            lines += selection(member, depth + 1, path, None, aliased)
            lines.append(f"{pad}}}")
        return lines
    if not isinstance(named, GraphQLObjectType):
        raise SchemaNotSupported(f"cannot select from {named}")
    if named.name in path:
        cycle = " -> ".join((*path, named.name))
        raise SchemaNotSupported(f"the default selection would cycle: {cycle}")
    for name, field in selectable(named).items():
        arguments = ""
        if field.args:
            if root_params is None:
                continue
            given = []
            for arg_name, arg in field.args.items():
                param = f"{snake(name).rstrip('_')}_{snake(arg_name).rstrip('_')}"
                root_params.append(Param(param, param, arg.type, default_of(arg)))
                given.append(f"{arg_name}: ${param}")
            arguments = f"({', '.join(given)})"
        key = f"{aliases[name]}: {name}" if aliases and name in aliases else name
        child = get_named_type(field.type)
        if is_leaf_type(child):
            lines.append(f"{pad}{key}{arguments}")
            continue
        lines.append(f"{pad}{key}{arguments} {{")
        lines += selection(child, depth + 1, (*path, named.name), None)
        lines.append(f"{pad}}}")
    return lines


@dataclass
class RootField:
    """One root field and everything generated for it."""

    operation: str  # query, mutation or subscription
    name: str
    field: GraphQLField
    params: list[Param]
    flattened: GraphQLInputObjectType | None  # the sole ``input`` argument, spread out
    document: str

    @property
    def method(self) -> str:
        return snake(self.name)

    @property
    def constant(self) -> str:
        return constant(self.name)

    @property
    def result_type(self) -> str:
        return py_type(self.field.type)

    def variables(self) -> str:
        """The ``variables`` dict literal of the method body."""
        if self.flattened is not None:
            given = ", ".join(f"{snake(n)}={p.name}" for n, p in self._flat_params())
            items = [f'"input": {self.flattened.name}({given}).to_json()']
            items += [
                f'"{p.variable}": {dump_expr(p.gql_type, p.name)}'
                for p in self.params[len(self.flattened.fields) :]
            ]
        else:
            items = [f'"{p.variable}": {dump_expr(p.gql_type, p.name)}' for p in self.params]
        return "{" + ", ".join(items) + "}"

    def _flat_params(self) -> Iterable[tuple[str, Param]]:
        assert self.flattened is not None
        return zip(self.flattened.fields, self.params, strict=False)


def _sole_input(field: GraphQLField) -> GraphQLInputObjectType | None:
    if list(field.args) != ["input"]:
        return None
    arg_type = field.args["input"].type
    if isinstance(arg_type, GraphQLNonNull) and isinstance(
        arg_type.of_type, GraphQLInputObjectType
    ):
        return arg_type.of_type
    return None


def _param_name(name: str) -> str:
    python = snake(name)
    return f"{python}_" if python in RESERVED else python


def root_field(operation: str, name: str, field: GraphQLField) -> RootField:
    flattened = _sole_input(field)
    params: list[Param] = []
    if flattened is not None:
        for input_name, input_field in flattened.fields.items():
            params.append(
                Param(
                    _param_name(input_name),
                    input_name,
                    input_field.type,
                    default_of(input_field),
                    input_field.description,
                )
            )
    else:
        for arg_name, arg in field.args.items():
            params.append(
                Param(_param_name(arg_name), arg_name, arg.type, default_of(arg), arg.description)
            )
    root_params: list[Param] | None = [] if operation == "query" else None
    named = get_named_type(field.type)
    inner = [] if is_leaf_type(named) else selection(named, 2, (), root_params)
    extra = root_params or []
    # The root field's own arguments keep their names as variables (a flattened input too).
    definitions = [f"${a}: {arg.type}" for a, arg in field.args.items()]
    definitions += [f"${p.variable}: {p.gql_type}" for p in extra]
    lines = _wrapped(f"{operation} {pascal(name)}", definitions, " {", "")
    arguments = [f"{a}: ${a}" for a in field.args]
    lines += _wrapped(f"  {name}", arguments, " {" if inner else "", "  ")
    if inner:
        lines += [*inner, "  }"]
    lines.append("}")
    names = [p.name for p in params + extra]
    if len(set(names)) != len(names):
        raise SchemaNotSupported(f"{name}: two parameters would share a name in {names}")
    return RootField(operation, name, field, params + extra, flattened, "\n".join(lines))


def _wrapped(head: str, items: list[str], tail: str, pad: str) -> list[str]:
    """``head(a, b){tail}`` on one line, or one item a line when that is too long."""
    if not items:
        return [head + tail]
    line = f"{head}({', '.join(items)}){tail}"
    if len(line) <= DOCUMENT_WIDTH:
        return [line]
    return [f"{head}(", *(f"{pad}  {item}" for item in items), f"{pad}){tail}"]


def root_fields(schema: GraphQLSchema) -> list[RootField]:
    found: list[RootField] = []
    for operation, root in (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    ):
        if root is None:
            continue
        for name, field in root.fields.items():
            found.append(root_field(operation, name, field))
    return found
