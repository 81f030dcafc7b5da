"""Observability of the server: Prometheus metrics, request ids, structured logs.

Everything here lives in the composition root; the domain never imports it. Where a service
has something to report it takes a plain callable (see ``WebhookDispatcher.on_outcome``).
"""

from memoria.observability.logging_setup import configure_logging
from memoria.observability.request_ids import current_request_id

__all__ = ["configure_logging", "current_request_id"]
