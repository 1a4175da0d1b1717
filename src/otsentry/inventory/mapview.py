"""The network map an OT engineer asks for: Graphviz DOT rendered to SVG and PNG by ``dot``.

Assets are grouped in one cluster per subnet (/24 for IPv4, /64 for IPv6), coloured by role
(initiators — masters, clients, controlling stations — blue; responders green; both amber),
labelled with IP, vendor or identity, and their logical devices. Edges go from initiator to
responder, one per protocol, labelled with the function classes used; writes and controls are red
and thick. Past ``max_assets`` the busiest assets are drawn and the rest counted in a note.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from otsentry.inventory.codes import ACTIVE_CLASSES, FUNCTION_CLASSES, ROLES

INITIATOR_ROLES = frozenset(r[0] for r in ROLES.values())
RESPONDER_ROLES = frozenset(r[1] for r in ROLES.values())
FILL = {"initiator": "#dbe9f6", "responder": "#e3f1df", "both": "#fbe5c8", "unknown": "#eeeeee"}
ACTIVE_COLOR = "#c0392b"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def subnet(ip: str) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "other"
    prefix = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _role_group(roles: list[str]) -> str:
    names = {r.split(" ", 1)[1] for r in roles if " " in r}
    initiator, responder = bool(names & INITIATOR_ROLES), bool(names & RESPONDER_ROLES)
    if initiator and responder:
        return "both"
    return "initiator" if initiator else "responder" if responder else "unknown"


def _asset_label(asset: dict[str, Any], devices: list[dict[str, Any]]) -> str:
    lines = [asset["ip"]]
    identity = asset.get("identity") or {}
    name = " ".join(str(identity[k]) for k in ("vendor", "product", "product_code") if identity.get(k))
    name = name or identity.get("device_manufacturer_name") or identity.get("product_name_and_model") or ""
    vendor = asset.get("vendor") or ""
    for text in (name, vendor):
        if text:
            lines.append(str(text)[:40])
            break
    by_role: dict[str, list[str]] = defaultdict(list)
    for dev in devices:
        for role in dev.get("roles") or []:
            by_role[f"{dev['protocol']} {role}"].append(dev.get("address") or "")
    for role in sorted(by_role):
        addresses = sorted(
            {a for a in by_role[role] if a}, key=lambda a: (not a.isdigit(), int(a) if a.isdigit() else a)
        )
        lines.append(
            f"{role} {','.join(addresses)}".strip() if len(addresses) <= 6 else f"{role} ×{len(addresses)}"
        )
    return "\n".join(lines)


def build_dot(
    assets: list[dict[str, Any]],
    addresses: dict[int, list[dict[str, Any]]],
    comms: list[dict[str, Any]],
    max_assets: int = 300,
    title: str = "otsentry network map",
) -> str:
    """DOT text for ``assets`` (rows of the assets table), their device rows and the communications."""
    ranked = sorted(assets, key=lambda a: -(a.get("messages") or 0))
    shown = ranked[:max_assets]
    shown_ips = {a["ip"] for a in shown}
    node_ids = {a["ip"]: f"a{i}" for i, a in enumerate(shown)}
    lines = [
        "digraph otsentry {",
        f"  graph [rankdir=LR, fontname=Helvetica, fontsize=12, labelloc=t, label={_quote(title)},"
        " nodesep=0.3, ranksep=1.2, compound=true];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        '  edge [fontname=Helvetica, fontsize=9, color="#555555", fontcolor="#333333"];',
    ]
    clusters: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for asset in shown:
        clusters[subnet(asset["ip"])].append(asset)
    for n, net in enumerate(sorted(clusters, key=_net_key)):
        lines.append(f"  subgraph cluster_{n} {{")
        lines.append(f'    label={_quote(net)}; style="rounded,dashed"; color="#888888";')
        for asset in sorted(clusters[net], key=lambda a: _ip_key(a["ip"])):
            devices = [d for d in addresses.get(asset["id"], []) if d.get("kind") == "device"]
            group = _role_group(asset.get("roles") or [])
            lines.append(
                f"    {node_ids[asset['ip']]} [label={_quote(_asset_label(asset, devices))},"
                f' fillcolor="{FILL[group]}", tooltip={_quote(asset["ip"])}];'
            )
        lines.append("  }")
    edges: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for row in comms:
        if row["initiator_ip"] in shown_ips and row["responder_ip"] in shown_ips:
            classes = edges[(row["initiator_ip"], row["responder_ip"], row["protocol"])]
            if row["direction"] == "request" and row.get("function_class"):
                classes.add(row["function_class"])
    for (src, dst, protocol), classes in sorted(edges.items()):
        ordered = [c for c in FUNCTION_CLASSES if c in classes]
        label = f"{protocol}: {', '.join(ordered)}" if ordered else protocol
        active = bool(classes & ACTIVE_CLASSES)
        style = f', color="{ACTIVE_COLOR}", fontcolor="{ACTIVE_COLOR}", penwidth=2.2' if active else ""
        lines.append(f"  {node_ids[src]} -> {node_ids[dst]} [label={_quote(label)}{style}];")
    hidden = len(assets) - len(shown)
    if hidden > 0:
        lines.append(
            f'  more [shape=note, style=filled, fillcolor="#ffffff",'
            f" label={_quote(f'… and {hidden} more assets (raise --max-assets)')}];"
        )
    lines.append(
        f'  legend [shape=plaintext, style="", label={_quote("red edges: writes and controls")},'
        f' fontcolor="{ACTIVE_COLOR}"];'
    )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(
    dot_text: str, out: Path, formats: tuple[str, ...] = ("svg", "png"), timeout: float = 300
) -> list[Path]:
    """Write ``out.<format>`` for each format with Graphviz ``dot`` (and ``out.dot`` for ``dot``)."""
    written: list[Path] = []
    dot = shutil.which("dot")
    for fmt in formats:
        target = out.with_suffix(f".{fmt}")
        if fmt == "dot":
            target.write_text(dot_text, encoding="utf-8")
        else:
            if dot is None:
                raise RuntimeError("Graphviz 'dot' is not installed (Debian: apt-get install graphviz)")
            done = subprocess.run(
                [dot, f"-T{fmt}", "-o", str(target)],
                input=dot_text.encode(),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
        written.append(target)
    return written


def _ip_key(ip: str) -> tuple[int, int, str]:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0, ip)
    return (addr.version, int(addr), "")


def _net_key(net: str) -> tuple[int, int, str]:
    return _ip_key(net.split("/")[0])
