#!/usr/bin/env python3
"""Capture loss: the highest rate at which ``otsentry run`` on a SPAN veth drops nothing.

A mix of typical OT traffic (the bench generator's randomised Modbus/TCP polling and writes and DNP3
polls, responses and controls, merged in time order) is sent with ``tcpreplay`` into the SPAN veth of
a network-namespace lab (tests/live_netns.py) while the sensor captures the other end. A rate passes
when the kernel dropped nothing (PACKET_STATISTICS over every worker) *and* the sensor wrote exactly as
many protocol events as ``otsentry replay`` of the same file. First ``--topspeed``; if that loses
anything, a bisection on ``--pps`` finds the highest passing rate (within ``--tolerance``).

The paced replays send 5 ms bursts (``--pps-multi``) with ``--timer=nano``: tcpreplay's default timer
spins a core, which on a 2-core machine would take half the CPU away from the sensor.
The ring is deliberately small (``--ring-mb``, per worker) so a trial measures sustained throughput,
not how much of the file fits in the ring: with R frames of ring, a rate passes only while
input × (1 − processed/input) × duration stays below R. Not a test: needs root; a few minutes.

    sudo .venv/bin/python bench/live_loss.py --workers 1 2 [--no-detect] [--inline] [--packets 300000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from live_events import OTSENTRY, PYTHON  # noqa: E402
from live_netns import SpanLab, netns_unavailable  # noqa: E402


def make_mix(cache: Path, packets: int, work: Path) -> Path:
    """The first ``packets`` frames of the Modbus and DNP3 bench captures (2:1), merged by time."""
    import make_bench_pcaps as gen

    modbus, _ = gen.ensure(cache, "modbus_bench.pcap", 1_000_000)
    dnp3, _ = gen.ensure(cache, "dnp3_bench.pcap", 300_000)
    parts = []
    for source, share in ((modbus, packets * 2 // 3), (dnp3, packets - packets * 2 // 3)):
        part = work / f"{source.stem}_{share}.pcap"
        subprocess.run(["editcap", "-r", str(source), str(part), f"1-{share}"], check=True)
        parts.append(part)
    mix = work / f"ot_mix_{packets}.pcap"
    subprocess.run(["mergecap", "-F", "pcap", "-w", str(mix), *map(str, parts)], check=True)
    return mix


def reference_events(mix: Path, detect: bool, work: Path) -> int:
    out = work / "reference.jsonl"
    argv = [PYTHON, "-m", "otsentry", "replay", str(mix), "--events-out", str(out), "--summary-json"]
    if not detect:
        argv.append("--no-detect")
    subprocess.run(argv, check=True, capture_output=True, timeout=1800)
    return sum(1 for _ in out.open("rb"))


def _log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def trial(
    lab: SpanLab, mix: Path, frames: int, workers: int, pps: int | None, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """One replay at ``pps`` (None: --topspeed); the kernel's drops, the events, tcpreplay's rate."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    events, log_path = run_dir / "events.jsonl", run_dir / "service.log"
    argv = [
        *OTSENTRY,
        "run",
        "-i",
        lab.span_in,
        "--workers",
        str(workers),
        "--events-out",
        str(events),
        "--stats-interval",
        "1",
        "--set",
        "logging.format='json'",
        "--set",
        f"capture.ring_mb={args.ring_mb}",
    ]
    if args.db:
        argv += ["--db", str(run_dir / "otsentry.db")]
    if not args.detect:
        argv.append("--no-detect")
    if args.inline and workers == 1:
        argv += ["--set", "capture.inline=true"]
    with open(log_path, "w") as log_file:
        sensor = subprocess.Popen(lab.cmd(lab.tap, argv), stderr=log_file)
    deadline = time.monotonic() + 60
    while not any(e.get("event") == "capturing" for e in _log(log_path)):
        if sensor.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the sensor did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    while not any(e.get("event") == "stats" for e in _log(log_path)):  # the collector is up, rules loaded
        time.sleep(0.1)
    start = process_cpu(sensor.pid)
    # A paced tcpreplay busy-waits between packets by default (a whole core on a 2-core box): sleep with
    # nanosleep and send in 5 ms bursts instead, so the sensor gets the CPU it would have in production.
    rate = (
        ["--topspeed"]
        if pps is None
        else ["--pps", str(pps), "--timer=nano", f"--pps-multi={max(1, pps // 200)}"]
    )
    sent = subprocess.run(
        lab.cmd(lab.plc, ["tcpreplay", "-i", lab.span_out, *rate, str(mix)]),
        capture_output=True,
        text=True,
        check=True,
    )
    rated = re.search(r"Rated: [\d.]+ Bps, ([\d.]+) Mbps, ([\d.]+) pps", sent.stdout)
    actual = re.search(r"Actual: (\d+) packets", sent.stdout)
    # Wait until the sensor has read what the kernel kept (frames + drops reach the packets sent).
    last, still = -1, 0
    while still < 3:
        time.sleep(1)
        stats = [e for e in _log(log_path) if e.get("event") == "stats"]
        seen = stats[-1]["interfaces"][lab.span_in]["frames_total"] + stats[-1]["drops_total"] if stats else 0
        still = still + 1 if seen == last else 0
        last = seen
    # `ip netns exec` execs the sensor: this pid is its main process. Start-up (imports, rules) excluded.
    end = process_cpu(sensor.pid)
    cpu = [round(end[p] - start.get(p, 0.0), 2) for p in end]
    sensor.send_signal(signal.SIGTERM)
    sensor.wait(600)
    stats = [e for e in _log(log_path) if e.get("event") == "stats"]
    final = stats[-1]
    busiest = max((s["interfaces"][lab.span_in]["pps"] for s in stats), default=0)
    with events.open("rb") as lines:  # protocol events only: not the otsentry.health metrics
        protocol = sum(1 for line in lines if b'"event.kind":"event"' in line)
    result = {
        "workers": workers,
        "inline": bool(args.inline and workers == 1),
        "requested_pps": pps or "topspeed",
        "pps": float(rated.group(2)) if rated else None,
        "mbps": float(rated.group(1)) if rated else None,
        "sent": int(actual.group(1)) if actual else None,
        "captured": final["interfaces"][lab.span_in]["frames_total"],
        "drops": final["drops_total"],
        "events": protocol,
        "busiest_second_pps": busiest,
        "cpu_seconds": cpu,  # main process first, then the capture workers
        # Frames per CPU-second of the busiest process: the rate a dedicated core would sustain.
        "capacity_pps": round(final["interfaces"][lab.span_in]["frames_total"] / max(max(cpu), 1e-9)),
    }
    result["passed"] = result["drops"] == 0 and protocol == args.reference and result["captured"] == frames
    subprocess.run(["rm", "-rf", str(run_dir)])
    return result


def search(
    lab: SpanLab, mix: Path, frames: int, workers: int, args: argparse.Namespace, work: Path
) -> list[dict[str, Any]]:
    results = [trial(lab, mix, frames, workers, None, args, work)]
    _print(results[-1])
    if results[-1]["passed"]:
        return results
    lo, hi = 0, int(results[-1]["pps"] or 500_000)
    rate = min(hi, args.start_pps)
    while hi - lo > max(1000, hi * args.tolerance):
        results.append(trial(lab, mix, frames, workers, rate, args, work))
        _print(results[-1])
        if results[-1]["passed"]:
            lo = rate
        else:
            hi = rate
        rate = (lo + hi) // 2 if lo else hi // 2
    return results


def process_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``pid`` and of its children, by pid, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    seconds = {}
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[p] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return seconds


def _print(r: dict[str, Any]) -> None:
    verdict = "ok  " if r["passed"] else "LOSS"
    print(
        f"  {verdict} workers={r['workers']} requested={r['requested_pps']!s:>9} rate={r['pps']:>10,.0f} pps "
        f"{r['mbps']:>7.1f} Mbps  captured={r['captured']:,} drops={r['drops']:,} events={r['events']:,} "
        f"cpu={r['cpu_seconds']} s -> {r['capacity_pps']:,} frames/cpu-s",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--packets", type=int, default=300_000, help="frames in the replayed mix")
    parser.add_argument(
        "--ring-mb", type=int, default=8, help="ring per worker (small: measure sustained rate)"
    )
    parser.add_argument(
        "--no-detect", dest="detect", action="store_false", help="decode and write events only"
    )
    parser.add_argument("--db", action="store_true", help="also write the SQLite database")
    parser.add_argument(
        "--inline", action="store_true", help="one worker: capture and analysis in one process"
    )
    parser.add_argument("--start-pps", type=int, default=40_000)
    parser.add_argument("--tolerance", type=float, default=0.08)
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / ".cache")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    reason = netns_unavailable()
    if reason:
        print(f"live_loss: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="otsentry-loss-") as tmp:
        work = Path(tmp)
        mix = make_mix(args.cache, args.packets, work)
        frames = int(
            subprocess.run(
                ["capinfos", "-c", "-M", "-T", str(mix)], capture_output=True, text=True, check=True
            ).stdout.split()[-1]
        )
        size = mix.stat().st_size
        args.reference = reference_events(mix, args.detect, work)
        print(
            f"mix: {frames:,} frames, {size / 1e6:.1f} MB, avg {(size - 24) / frames - 16:.0f} B/frame; "
            f"offline replay: {args.reference:,} events; detection {'on' if args.detect else 'off'}; "
            f"ring {args.ring_mb} MiB/worker; {os.cpu_count()} cores",
            flush=True,
        )
        summary = []
        with SpanLab(f"olb{os.getpid() % 1000}") as lab:
            for workers in args.workers:
                results = search(lab, mix, frames, workers, args, work)
                best = max((r for r in results if r["passed"]), key=lambda r: r["pps"] or 0, default=None)
                summary.append({"workers": workers, "best": best, "trials": results})
                if best:
                    print(
                        f"workers={workers}: no loss up to {best['pps']:,.0f} pps / {best['mbps']:.1f} Mbps",
                        flush=True,
                    )
                else:
                    print(f"workers={workers}: loss at every rate tried", flush=True)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "frames": frames,
                        "reference_events": args.reference,
                        "detect": args.detect,
                        "ring_mb": args.ring_mb,
                        "results": summary,
                    },
                    indent=1,
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
