"""GraphQL object and input types, each built from a domain entity."""
