"""Outbound adapters: embedders, LLM chat models, security primitives, connectors."""
