"""Asset inventory and the reviewable baseline ("baseline as code").

* :mod:`observe` — what one protocol event means: roles, logical devices, functions, points, values;
* :mod:`assets`, :mod:`comms`, :mod:`state` — the bounded in-memory inventory;
* :mod:`baseline` — learn, YAML export/import, merge (accept), diff;
* :mod:`deviations` — compare traffic with a baseline, one deviation per root cause;
* :mod:`enrich` — the pipeline stage that ties them together;
* :mod:`store` — SQLite tables; :mod:`mapview` — the Graphviz map; :mod:`cli` — the commands.
"""
