"""The GraphQL executor, with a sub-field memo that survives from one subscription event to
the next.

graphql-core memoises "which sub-fields does this object type select" per executor, keyed by
the *identity* of the field-group list. A subscription executes every event with a shallow
copy of one executor (sharing that memo), but collects the root fields afresh per event, so
every event brings new lists: the memo never hits, and it keeps one entry per event alive for
the subscription's lifetime. For a ``chat`` stream that was the largest single cost of relaying
a token (collecting the selection of the union member again for each of ~200 events) and a
memory leak of one entry per token. Keyed by the identities of the AST nodes instead (stable:
the document is parsed once per operation), the memo hits from the second event on and holds
one entry per selection.

``ChatDelta`` events (nearly every event of a ``chat`` stream) skip execution altogether:
on the first one the operation's selection is checked once (a single root field, and for
``ChatDelta`` only ``__typename``/``text``/``index`` leaves under any aliases, fragments or
``@skip``/``@include``, no ``@defer``, no middleware) and turned into a list of
``(response key, field)`` pairs; each delta is then the dict those pairs give, serialized by
the schema's own scalar types, in the order graphql-core would produce. Anything else (other
event types, other selections, an error while rendering) runs the normal execution.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLObjectType,
    GraphQLScalarType,
    OperationType,
    get_named_type,
)
from graphql.execution.collect_fields import (
    CollectedFields,
    FieldDetailsList,
    collect_fields,
    collect_subfields,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graph.types.chat import ChatDelta

_DELTA_LEAVES = frozenset({"__typename", "text", "index"})
_PLAIN_DIRECTIVES = frozenset({"skip", "include"})  # already applied by field collection
# (response key of the root field, [(response key, field name, serialize or None)])
_DeltaPlan = tuple[str, list[tuple[str, str, Any]]]
_CURRENT: ContextVar[EventStableExecutor] = ContextVar("memoria_subscription_executor")


class EventStableExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.operation.operation == OperationType.SUBSCRIPTION:
            # For the delta lane (graph/delta_lane.py): the subscription's resolver runs
            # in the task that built this executor, and can find it there.
            _CURRENT.set(self)
        # Shared with the per-event copies (``build_per_event_executor`` is a shallow copy).
        self._stable_sub_fields: dict[
            tuple[Any, ...], tuple[FieldDetailsList, CollectedFields]
        ] = {}
        # Shared likewise: [] until the first ChatDelta, then [plan] or [None] (not eligible).
        self._delta_plan: list[_DeltaPlan | None] = []

    @staticmethod
    def current() -> EventStableExecutor | None:
        """The executor of the subscription this task runs, if any."""
        return _CURRENT.get(None)

    def delta_plan(self) -> _DeltaPlan | None:
        """How this operation renders a ChatDelta (None: it must be executed)."""
        if not self._delta_plan:
            self._delta_plan.append(self._plan_delta())
        return self._delta_plan[0]

    def build_per_event_executor(self, payload: Any) -> Any:
        if type(payload) is ChatDelta:
            plan = self.delta_plan()
            if plan is not None:
                # No copy of the executor: all a delta event needs is rendering.
                return _DeltaEvent(self, payload, plan)
        return super().build_per_event_executor(payload)

    def execute_delta(self, payload: ChatDelta, plan: _DeltaPlan) -> Any:
        signal = self.abort_signal
        if signal is None or not signal.aborted:
            key, fields = plan
            rendered: dict[str, Any] | None
            try:
                rendered = {
                    out: "ChatDelta" if serialize is None else serialize(getattr(payload, name))
                    for out, name, serialize in fields
                }
            except Exception:  # noqa: BLE001  # the normal path below reports it
                rendered = None
            if rendered is not None:
                self.run_async_work_finished_hook()
                return ExecutionResult({key: rendered}, None)
        return super().build_per_event_executor(payload).execute_operation(False)

    def _plan_delta(self) -> _DeltaPlan | None:
        """The ChatDelta rendering of this operation's selection, or None to execute."""
        if self.operation.operation != OperationType.SUBSCRIPTION:
            return None
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return None
        root_type = self.schema.subscription_type
        delta_type = self.schema.get_type("ChatDelta")
        if root_type is None or not isinstance(delta_type, GraphQLObjectType):
            return None
        roots = collect_fields(
            self.schema,
            self.fragments,
            self.variable_values,
            root_type,
            self.operation,
            self.hide_suggestions,
        )
        if roots.new_defer_usages or len(roots.grouped_field_set) != 1:
            return None
        ((key, details),) = roots.grouped_field_set.items()
        if any(not self._plain(d) or d.node.name.value != "chat" for d in details):
            return None
        union = get_named_type(root_type.fields["chat"].type)
        if not any(t is delta_type for t in getattr(union, "types", ())):
            return None
        sub = self.collect_subfields(delta_type, details)
        if sub.new_defer_usages:
            return None
        fields: list[tuple[str, str, Any]] = []
        for out, sub_details in sub.grouped_field_set.items():
            name = sub_details[0].node.name.value
            if name not in _DELTA_LEAVES or not all(
                self._plain(d) and d.node.name.value == name and d.node.selection_set is None
                for d in sub_details
            ):
                return None
            if name == "__typename":
                fields.append((out, name, None))
                continue
            leaf = get_named_type(delta_type.fields[name].type)
            if not isinstance(leaf, GraphQLScalarType):
                return None
            fields.append((out, name, leaf.serialize))
        return key, fields

    @staticmethod
    def _plain(details: Any) -> bool:
        return details.defer_usage is None and all(
            d.name.value in _PLAIN_DIRECTIVES for d in details.node.directives or ()
        )

    def collect_subfields(
        self, return_type: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> CollectedFields:
        key = (
            return_type,
            *(
                (id(d.node), id(d.defer_usage), id(d.fragment_variable_values))
                for d in field_details_list
            ),
        )
        cached = self._stable_sub_fields.get(key)
        if cached is not None:
            return cached[1]
        collected = collect_subfields(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            return_type,
            field_details_list,
            self.hide_suggestions,
        )
        # The list is kept with the value so the objects whose ids form the key stay alive
        # (an id is only unique among live objects).
        self._stable_sub_fields[key] = (field_details_list, collected)
        return collected


class _DeltaEvent:
    """What ``build_per_event_executor`` gives for a ChatDelta with a plan: graphql-core only
    calls ``execute_operation(False)`` on it (``execute_subscription_event``)."""

    __slots__ = ("_executor", "_payload", "_plan")

    def __init__(self, executor: EventStableExecutor, payload: ChatDelta, plan: _DeltaPlan) -> None:
        self._executor = executor
        self._payload = payload
        self._plan = plan

    def execute_operation(self, serially: bool | None = None) -> Any:
        if serially is False:
            return self._executor.execute_delta(self._payload, self._plan)
        event = StrawberryGraphQLCoreExecutionContext.build_per_event_executor(
            self._executor, self._payload
        )
        return event.execute_operation(serially)
