"""Helpers for tests that use the public captures in ../shared/pcaps and the tshark reference."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_PCAPS = REPO.parent / "shared" / "pcaps"
SAMPLE_PCAPS = REPO / "pcaps"

needs_shared = pytest.mark.skipif(
    not SHARED_PCAPS.is_dir(),
    reason=f"public captures not found at {SHARED_PCAPS} (a user's clone without ../shared)",
)
needs_tshark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark is not installed (run ./setup.sh)"
)


def shared_captures(*folders: str) -> list[Path]:
    """Every capture under the given folders of ../shared/pcaps (empty if the folder is absent)."""
    found: list[Path] = []
    for folder in folders:
        base = SHARED_PCAPS / folder
        if base.is_dir():
            found += sorted(p for p in base.rglob("*") if p.suffix in {".pcap", ".pcapng", ".cap"})
    return found


def capture_id(path: Path) -> str:
    try:
        return str(path.relative_to(SHARED_PCAPS))
    except ValueError:
        return path.name


@cache
def tshark_fields(
    path: Path, fields: tuple[str, ...], decode_as: tuple[str, ...] = (), enable: tuple[str, ...] = ()
) -> list[list[str]]:
    """``tshark -T fields`` rows (one per frame): the frame number first, then ``fields``."""
    cmd = [
        "tshark",
        "-n",
        "-r",
        str(path),
        "-T",
        "fields",
        "-E",
        "separator=|",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-e",
        "frame.number",
    ]
    for rule in decode_as:
        cmd += ["-d", rule]
    for protocol in enable:
        cmd += ["--enable-protocol", protocol]
    for name in fields:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines()]
