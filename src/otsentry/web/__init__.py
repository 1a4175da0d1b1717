"""The analyst console: a server-rendered web view of alerts, assets, the map, the baseline and health.

* :mod:`app` — the Starlette application, its routes and templates;
* :mod:`database` — per-thread SQLite connections to the sensor database and the console's own tables
  (users, sessions, login throttle, audit) plus the indexes its pages need on the other stages' tables;
* :mod:`users`, :mod:`sessions`, :mod:`security`, :mod:`audit` — argon2 passwords, server-side sessions
  with CSRF tokens, login rate limiting, security headers, the audit log;
* :mod:`alerts`, :mod:`assets`, :mod:`netmap`, :mod:`review`, :mod:`health` — what each page reads and does;
* :mod:`tls` — the provided or a generated self-signed certificate; :mod:`cli` — ``serve`` and ``users``.

Pages read the tables of the inventory (``assets``, ``communications``, ``baseline``, ``deviations``),
detection (``alerts``) and outputs (``forward_state``, ``outbox``) stages; a table that does not exist yet
gives an empty page with a hint, never an error.
"""
