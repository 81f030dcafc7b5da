"""The GraphQL API (Strawberry): schema, types, resolvers, per-operation context."""
