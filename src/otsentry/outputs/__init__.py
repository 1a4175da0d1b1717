"""SIEM outputs: payload formats, transports and the outbox forwarder.

Data flow: ``alerts``/``outbox`` (written by detect/alerts.py in one transaction) → one
:class:`~otsentry.outputs.forwarder.Forwarder` per configured destination → a payload format
(CEF, LEEF 2.0, ECS JSON, plain message) → optional syslog framing (RFC 5424 / RFC 3164) → a transport.

Delivery guarantee per transport (what "acknowledged" means before the forwarder moves on):

* ``relp``  — the receiver's RELP ``rsp 200`` for each message: at-least-once, nothing lost.
* ``hec``   — Splunk HEC indexer acknowledgement (``/services/collector/ack``) when ``hec_acks`` is on,
  otherwise the HTTP 200 of the POST.
* ``tcp``/``tls`` — the peer's TCP acknowledgement of every byte (the kernel's send queue is empty).
  A receiver that dies with acknowledged data in its own queues loses it, so after any reconnect the
  last ``resend_window`` messages are sent again (duplicates, same ``otsentry.alert.id``).
* ``udp``   — best effort: acknowledged when handed to the kernel.
* ``file``  — ECS JSON lines, acknowledged after ``fsync``.
"""
