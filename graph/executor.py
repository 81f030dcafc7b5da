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
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLObjectType
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList, collect_subfields
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class EventStableExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Shared with the per-event copies (``build_per_event_executor`` is a shallow copy).
        self._stable_sub_fields: dict[
            tuple[Any, ...], tuple[FieldDetailsList, CollectedFields]
        ] = {}

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
