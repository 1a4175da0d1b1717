"""Detection: Sigma rules compiled to Python, streaming correlations, alerts with storage and evidence.

The sensor's API: ``DetectionEngine.from_paths([...])``, ``engine(events) -> alerts``, ``engine.flush()``;
``AlertStore`` for the database; ``register(cli)`` in :mod:`otsentry.detect.cli` for the commands.
"""

from otsentry.detect.alerts import AlertStore
from otsentry.detect.engine import DetectionEngine, bundled_rules_dir

__all__ = ["AlertStore", "DetectionEngine", "bundled_rules_dir"]
