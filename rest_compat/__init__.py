"""REST compatibility layer: the five documented APIs over the domain services."""
