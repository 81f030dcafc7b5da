"""Memoria's domain: entities, ports, policy, errors and use-case services.

Pure Python: this package imports only the standard library. Adapters depend on it;
it depends on none of them.
"""
