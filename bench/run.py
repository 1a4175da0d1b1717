"""Throughput of otsentry, tshark and Suricata on the same large Modbus and DNP3 captures.

``python bench/run.py [--runs 3] [--tools otsentry,tshark,suricata] [--cache DIR]``

Each tool decodes each capture ``--runs`` times (interleaved); the table shows the median wall time as
packets/s (packets = ``capinfos -c``), the ratios otsentry/tshark and otsentry/suricata, and every tool's
record count beside the number of messages the generator wrote, so a peer that silently stopped
parsing shows up. The commands are pinned here:

* tshark: ``tshark -n -r F -T fields -e frame.number -e modbus.func_code`` (``dnp3.al.func`` for DNP3),
  stdout to a file; records = function-code values (one per PDU; several PDUs in a frame are
  comma-separated).
* Suricata 7: ``suricata -c bench/suricata.yaml --runmode single -k none --disable-detection -r F -l DIR``
  (Modbus and DNP3 parsers on, EVE ``modbus``/``dnp3`` records, stream depth unlimited, no checksum
  checks, no rules); records = EVE lines. Suricata logs one Modbus record per request/response pair
  and no DNP3 record for CONFIRMs.
* otsentry: ``otsentry replay F --events-out OUT.jsonl``; records = events by ``event.dataset``.

Results go to stdout and bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import make_bench_pcaps  # noqa: E402

SURICATA_YAML = REPO / "bench" / "suricata.yaml"
RESULTS = REPO / "bench" / "results.md"
CAPTURES = {"modbus": ("modbus_bench.pcap", "modbus.func_code"), "dnp3": ("dnp3_bench.pcap", "dnp3.al.func")}


@dataclass
class Outcome:
    """One tool on one capture: wall times of every run and the records of the last run."""

    seconds: list[float] = field(default_factory=list)
    records: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def tshark_command(capture: Path, function_field: str) -> list[str]:
    return ["tshark", "-n", "-r", str(capture), "-T", "fields", "-e", "frame.number", "-e", function_field]


def suricata_command(capture: Path, log_dir: Path, config: Path = SURICATA_YAML) -> list[str]:
    return [
        "suricata",
        "-c",
        str(config),
        "--runmode",
        "single",
        "-k",
        "none",
        "--disable-detection",
        "-r",
        str(capture),
        "-l",
        str(log_dir),
    ]


# otsentry decoding only (flow-sharded workers on every core); decoding in one process; and with the
# whole rule pack, inventory and baseline stages (one process: correlations span flows). The two
# one-process rows isolate what the analysis stages cost.
OTSENTRY_VARIANTS = {
    "otsentry": ["--no-detect"],
    "otsentry 1 process": ["--no-detect", "--workers", "1"],
    "otsentry+rules": [],
}


def otsentry_command(executable: str, capture: Path, events: Path, variant: str = "otsentry") -> list[str]:
    return [executable, "replay", str(capture), "--events-out", str(events), *OTSENTRY_VARIANTS[variant]]


def _timed(command: list[str], stdout: Path | None = None) -> float:
    with stdout.open("wb") if stdout else open(os.devnull, "wb") as out:
        started = time.perf_counter()
        subprocess.run(command, stdout=out, stderr=subprocess.PIPE, check=True)
        return time.perf_counter() - started


def run_tshark(capture: Path, function_field: str, work: Path) -> tuple[float, Counter[str]]:
    out = work / "tshark.tsv"
    seconds = _timed(tshark_command(capture, function_field), out)
    records: Counter[str] = Counter()
    with out.open() as rows:
        for row in rows:
            codes = row.rstrip("\n").partition("\t")[2]
            if codes:
                records[function_field] += codes.count(",") + 1
    return seconds, records


EVENT_TYPE = re.compile(rb'"event_type":"([a-z0-9_]+)"')
DATASET = re.compile(rb'"event\.dataset":\s*"([^"]+)"')


def run_suricata(capture: Path, work: Path) -> tuple[float, Counter[str]]:
    log_dir = work / "suricata"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir()
    seconds = _timed(suricata_command(capture, log_dir))
    eve = (log_dir / "eve.json").read_bytes() if (log_dir / "eve.json").exists() else b""
    return seconds, Counter(m.decode() for m in EVENT_TYPE.findall(eve))


def run_otsentry(
    executable: str, capture: Path, work: Path, variant: str = "otsentry"
) -> tuple[float, Counter[str]]:
    events = work / "otsentry.jsonl"
    events.unlink(missing_ok=True)
    seconds = _timed(otsentry_command(executable, capture, events, variant))
    data = events.read_bytes() if events.exists() else b""
    return seconds, Counter(m.decode() for m in DATASET.findall(data))


def find_otsentry() -> tuple[str | None, str]:
    """The otsentry executable if its ``replay`` command works, else None and why."""
    candidates = [str(REPO / ".venv" / "bin" / "otsentry"), shutil.which("otsentry")]
    for candidate in filter(None, candidates):
        if not Path(candidate).exists():
            continue
        probe = subprocess.run([candidate, "replay", "--help"], capture_output=True, text=True)
        if probe.returncode == 0 and "--events-out" in probe.stdout:
            return candidate, ""
        return None, f"`{candidate} replay --help` failed: {(probe.stderr or probe.stdout).strip()[-200:]}"
    return None, "no otsentry executable (pip install -e . first)"


def packet_count(capture: Path) -> int:
    out = subprocess.run(
        ["capinfos", "-c", "-M", "-T", "-r", str(capture)], capture_output=True, text=True, check=True
    ).stdout
    return int(out.split()[-1])


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "not installed"
    return out.splitlines()[0].strip() if out else "unknown"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _records(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(counter.items())) or "0"


def expected_records(protocol: str, tool: str, meta: dict[str, object]) -> int:
    """What a tool that parsed every message reports for the generator's capture."""
    messages = int(meta["messages"])  # type: ignore[call-overload]
    if tool != "suricata":
        return messages  # tshark: one function code per PDU; otsentry: one event per message
    if protocol == "modbus":
        return int(meta["requests"])  # type: ignore[call-overload]  # one record per request/response pair
    return messages - int(meta["confirms"])  # type: ignore[call-overload]  # no record for CONFIRM


def render(
    results: dict[str, dict[str, Outcome]],
    packets: dict[str, int],
    meta: dict[str, dict[str, object]],
    runs: int,
    load: list[float],
) -> str:
    lines = [
        "# otsentry bench",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {_cpu()} · {os.cpu_count()} cores · "
        f"median of {runs} runs (wall time, including each tool's start-up) · 1-min load average "
        f"{min(load):.1f}–{max(load):.1f} (other jobs on the machine slow every tool alike; runs are "
        "interleaved)",
        "",
        f"- {_version(['tshark', '--version'])}",
        f"- {_version(['suricata', '-V'])}",
        f"- otsentry: {_version([find_otsentry()[0] or 'otsentry', '--version'])}",
        "",
        "| capture | packets | tool | median s | packets/s | otsentry ÷ tool | records | expected | parsed |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|",
    ]
    for protocol, by_tool in results.items():
        ours = by_tool.get("otsentry")
        for tool, outcome in by_tool.items():
            expected = expected_records(protocol, tool, meta[protocol])
            if outcome.skipped:
                lines.append(
                    f"| {protocol} | {packets[protocol]:,} | {tool} | – | – | – | "
                    f"skipped: {outcome.skipped} | {expected:,} | – |"
                )
                continue
            rate = packets[protocol] / outcome.median
            ratio = "–"
            if ours and not ours.skipped and tool != "otsentry":  # ratios of the decode-only run
                ratio = f"{outcome.median / ours.median:.2f}×"
            parsed = sum(outcome.records.values()) / expected if expected else 0.0
            lines.append(
                f"| {protocol} | {packets[protocol]:,} | {tool} | {outcome.median:.2f} | {rate:,.0f} | "
                f"{ratio} | {_records(outcome.records)} | {expected:,} | {parsed:.2%} |"
            )
    for protocol, by_tool in results.items():
        alone, rules = by_tool.get("otsentry 1 process"), by_tool.get("otsentry+rules")
        if alone and rules and not alone.skipped and not rules.skipped:
            lines.append(
                f"\n{protocol}: with inventory, enrichment and the rule pack a process replays at "
                f"{alone.median / rules.median:.0%} of its decode-only speed."
            )
    m, n = meta["modbus"], meta["dnp3"]
    config = SURICATA_YAML.relative_to(REPO)
    lines += [
        "",
        f"Generator: modbus {m['messages']:,} PDUs ({m['requests']:,} requests, {m['responses']:,} "
        f"responses of which {m['exceptions']:,} exceptions) in {m['flows']:,} TCP sessions; "
        f"dnp3 {n['messages']:,} "
        f"application fragments ({n['confirms']:,} confirms, {n['multi_segment_responses']:,} multi-segment "
        f"responses) in {n['flows']:,} sessions. `otsentry ÷ tool` = otsentry's packets/s over the tool's; "
        "`parsed` = records over what a tool that parsed every message reports.",
        "",
        "Commands (F = the capture):",
        "",
        f"- tshark: `{' '.join(tshark_command(Path('F'), 'modbus.func_code'))} > out.tsv` "
        "(`dnp3.al.func` for DNP3); records = function-code values (one per PDU)",
        f"- Suricata: `{' '.join(suricata_command(Path('F'), Path('LOGDIR'), config))}`; "
        "records = EVE lines (Modbus: one per request/response pair; DNP3: one per request and per "
        "response, none for CONFIRM)",
        f"- otsentry: `{' '.join(otsentry_command('otsentry', Path('F'), Path('OUT.jsonl')))}`; records = "
        "events by `event.dataset` (one per message); decoding with flow-sharded workers on every core",
        "- otsentry 1 process: the same with `--workers 1`",
        "- otsentry+rules: `otsentry replay F --events-out OUT.jsonl`: decoding plus inventory, enrichment,"
        " the DNP3 command checks and the whole Sigma pack, in one process; its cost is the step from the"
        " `otsentry 1 process` row",
        "",
        "Captures: bench/make_bench_pcaps.py (randomised transaction/unit ids, addresses, quantities, values "
        "and points; multi-segment DNP3 responses avoid the sample captures' peer-breaking edge cases).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", default="otsentry,otsentry 1 process,otsentry+rules,tshark,suricata")
    parser.add_argument("--cache", type=Path, default=make_bench_pcaps.CACHE)
    parser.add_argument("--modbus-packets", type=int, default=1_000_000)
    parser.add_argument("--dnp3-packets", type=int, default=300_000)
    parser.add_argument(
        "--no-results-file", action="store_true", help="print only; leave bench/results.md alone"
    )
    args = parser.parse_args(argv)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]

    wanted = any(t in OTSENTRY_VARIANTS for t in tools)
    otsentry, why_not = find_otsentry() if wanted else (None, "")
    if wanted and not otsentry:
        print(f"otsentry: skipped — {why_not}", file=sys.stderr)
    runners: dict[str, Callable[[Path, str, Path], tuple[float, Counter[str]]]] = {
        "tshark": run_tshark,
        "suricata": lambda capture, _field, work: run_suricata(capture, work),
    }
    if otsentry:
        for variant in OTSENTRY_VARIANTS:
            runners[variant] = lambda capture, _field, work, v=variant: run_otsentry(
                otsentry, capture, work, v
            )
    for tool in tools:
        if tool in ("tshark", "suricata") and not shutil.which(tool):
            print(f"{tool}: not installed (bench/setup.sh) — skipped", file=sys.stderr)

    targets = {"modbus": args.modbus_packets, "dnp3": args.dnp3_packets}
    results: dict[str, dict[str, Outcome]] = {}
    load: list[float] = []
    packets: dict[str, int] = {}
    meta: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="otsentry-bench-") as tmp:
        work = Path(tmp)
        for protocol, (name, function_field) in CAPTURES.items():
            capture, meta[protocol] = make_bench_pcaps.ensure(args.cache, name, targets[protocol])
            packets[protocol] = packet_count(capture)
            results[protocol] = {tool: Outcome() for tool in tools}
            for tool in tools:
                if tool in OTSENTRY_VARIANTS and not otsentry:
                    results[protocol][tool].skipped = why_not
                elif tool not in runners or not (tool in OTSENTRY_VARIANTS or shutil.which(tool)):
                    results[protocol][tool].skipped = "not installed"
            for run in range(args.runs):
                for tool, outcome in results[protocol].items():
                    if outcome.skipped:
                        continue
                    load.append(os.getloadavg()[0])
                    seconds, records = runners[tool](capture, function_field, work)
                    outcome.seconds.append(seconds)
                    outcome.records = records
                    print(
                        f"{protocol} run {run + 1}/{args.runs}: {tool} {seconds:.2f} s "
                        f"({packets[protocol] / seconds:,.0f} packets/s) — {_records(records)}",
                        file=sys.stderr,
                    )
    load.append(os.getloadavg()[0])
    report = render(results, packets, meta, args.runs, load)
    print(report)
    if not args.no_results_file:
        RESULTS.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
