"""Outbound webhook delivery: signing and the HTTP sender (the outbound guard is
``providers.outbound``)."""
