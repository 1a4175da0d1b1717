"""Write the sample captures and their ground truth: ``python pcaps/generate.py [--out DIR]``.

Deterministic: fixed seeds and a fixed start time, so a re-run gives byte-identical files
(tests/test_generator.py checks that the committed captures equal a fresh run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import ami_scenarios
import dnp3_anomalies
import dnp3_scenarios
import dnp3_secure_auth
import edge_scenarios
import linktypes
import modbus_diagnostics
import modbus_scenarios
from capture import Capture

CAPTURES: list[Callable[[], Capture]] = [
    modbus_scenarios.modbus_polling,
    modbus_scenarios.modbus_suspicious,
    dnp3_scenarios.dnp3_polling,
    dnp3_scenarios.dnp3_suspicious,
    edge_scenarios.dnp3_transport_wrap,
    edge_scenarios.dnp3_short_final_segment,
    edge_scenarios.tcp_midstream,
    ami_scenarios.dlms_disconnect,
    ami_scenarios.c1222_procedures,
    ami_scenarios.iec104_control,
    modbus_diagnostics.modbus_diagnostics,
    dnp3_anomalies.dnp3_anomalies,
    dnp3_secure_auth.dnp3_secure_auth,
]


def generate(out_dir: Path) -> list[tuple[Path, int]]:
    """Write every capture (and ``linktypes/``) into ``out_dir``; returns (path, packets) per file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [make().write(out_dir) for make in CAPTURES]
    return written + linktypes.write_variants(out_dir / "linktypes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output directory (default: the pcaps/ folder itself)",
    )
    args = parser.parse_args(argv)
    for path, packets in generate(args.out):
        print(f"{path}  {packets} packets  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
