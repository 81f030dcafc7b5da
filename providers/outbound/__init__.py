"""Dialling out safely: the outbound guard (resolve, check, pin) and the httpx transport
that uses it. Every adapter that connects to a user- or admin-named destination goes
through here."""
