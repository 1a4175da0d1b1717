"""Wireshark's view of the shared DNP3 captures, as the independent reference for the DNP3 tests.

Running tshark on all ~150 captures takes about a minute here, so its output is stored in
tests/data/dnp3_tshark.json (regenerate: ``.venv/bin/python tests/dnp3_tshark.py``); the slow
test ``test_dnp3_tshark_reference_is_current`` re-runs tshark and checks the stored file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from dnp3_replay import SHARED  # noqa: E402

REFERENCE = HERE / "data" / "dnp3_tshark.json"
FIELDS = [
    "frame.number",
    "dnp3.ctl.prifunc",
    "dnp3.ctl.secfunc",
    "dnp3.al.func",
    "dnp3.al.iin",
    "dnp3.al.obj",
    "dnp3.al.objq.prefix",
    "dnp3.al.objq.range",
    "dnp3.al.range.start",
    "dnp3.al.range.stop",
    "dnp3.al.range.quantity",
    "dnp3.ctl.op",
    "dnp3.ctl.trip",
    "dnp3.ctl.clr",
    "dnp3.al.count",
    "dnp3.al.on_time",
    "dnp3.al.off_time",
]


def dnp3_captures() -> list[Path]:
    """Every shared capture holding DNP3, sorted."""
    return sorted(
        p
        for p in SHARED.rglob("*")
        if p.suffix in (".pcap", ".cap") and "dnp3" in str(p.relative_to(SHARED)).lower()
    )


def tshark_version() -> str:
    first = subprocess.run(["tshark", "--version"], capture_output=True, text=True, check=True).stdout
    return first.splitlines()[0]


def tshark_frames(path: Path) -> dict[str, dict[str, list[str]]]:
    """Frame number → field → values, for frames where tshark shows any DNP3 field."""
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in FIELDS:
        cmd += ["-e", name]
    text = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    frames: dict[str, dict[str, list[str]]] = {}
    for line in text.splitlines():
        cols = line.split("\t")
        values = {name: col.split(",") for name, col in zip(FIELDS[1:], cols[1:], strict=False) if col}
        if values:
            frames[cols[0]] = values
    return frames


def build() -> dict:
    return {
        "tshark": tshark_version(),
        "captures": {str(p.relative_to(SHARED)): tshark_frames(p) for p in dnp3_captures()},
    }


if __name__ == "__main__":
    REFERENCE.parent.mkdir(exist_ok=True)
    data = build()
    lines = [f'{{"tshark": {json.dumps(data["tshark"])}, "captures": {{']
    captures = sorted(data["captures"].items())
    for i, (name, frames) in enumerate(captures):  # one capture per line: readable diffs
        comma = "," if i < len(captures) - 1 else ""
        compact = json.dumps(frames, sort_keys=True, separators=(",", ":"))
        lines.append(f"{json.dumps(name)}: {compact}{comma}")
    lines.append("}}")
    REFERENCE.write_text("\n".join(lines) + "\n")
    print(f"wrote {REFERENCE}")
