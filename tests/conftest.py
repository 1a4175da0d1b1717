"""Test-run wide settings: which test files must not run side by side."""

from __future__ import annotations

import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI replays the same examples every run so a red build always means a change broke something;
# `pytest --hypothesis-profile=fuzz tests/*fuzz*.py` (in a loop) is the bug-hunting campaign.
settings.register_profile("ci", derandomize=True)
settings.register_profile("fuzz", derandomize=False)
settings.load_profile("ci")

# These files create and delete network namespaces and veth pairs. Chromium aborts page loads with
# ERR_NETWORK_CHANGED when interfaces come and go, so the browser tests and these never run at the
# same time on two xdist workers: each such file holds one lock for its whole run.
NETWORK_CHANGING = {
    "test_live_capture.py",
    "test_live_service.py",
    "test_live_stacks.py",
    "test_forward_faults.py",
    "test_packaging_deb.py",
    "test_web_e2e.py",
}
LOCK = Path(tempfile.gettempdir()) / "otsentry-tests-network.lock"


@pytest.fixture(scope="module", autouse=True)
def _one_network_changing_file_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.path.name not in NETWORK_CHANGING:
        yield
        return
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # autouse + module scope: taken before the file's own fixtures
        yield
