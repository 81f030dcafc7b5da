"""Outbound webhook delivery: signing, the HTTP sender and the SSRF guard."""
