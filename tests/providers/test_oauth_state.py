"""The OAuth ``state`` signer: what it signs verifies, and anything else is a ValueError
(never another exception: the callback route turns ValueError into a 400)."""

from __future__ import annotations

import pytest

from providers.connectors.oauth import HmacStateSigner


def test_round_trip_and_refusals() -> None:
    signer = HmacStateSigner(b"k" * 32)
    state = signer.sign({"source": "s1", "user": "u1"})
    assert signer.verify(state) == {"source": "s1", "user": "u1"}
    body, _, mac = state.rpartition(".")
    for forged in (
        f"{body}.{mac[:-1]}0",
        "no-dot",
        "",
        f"{body}.é",  # non-ASCII: once a TypeError from hmac.compare_digest
        "ünïcode.ßtate",
        HmacStateSigner(b"x" * 32).sign({"source": "s1"}),
    ):
        with pytest.raises(ValueError, match="state"):
            signer.verify(forged)
