"""Embedders behind the domain ``Embedder`` port."""
