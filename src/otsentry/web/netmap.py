"""The network map page: the inventory's Graphviz drawing, made safe to inline and clickable.

:func:`otsentry.inventory.mapview.build_dot` draws it; ``dot -Tsvg`` renders it. The SVG is then rebuilt
element by element from an allow-list (shapes, text, groups, links — no scripts, no event handlers,
no styles, no external references), so even a label Graphviz failed to escape cannot run in the page.
Each asset node becomes a link to its asset page. Rendering a large plant takes seconds, so the result
is cached until the inventory changes (and at most every ``MIN_REDRAW_SECONDS`` while it keeps changing).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from otsentry.inventory.mapview import build_dot
from otsentry.web.assets import AssetQueries

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ALLOWED_ELEMENTS = {"svg", "g", "title", "polygon", "polyline", "path", "ellipse", "text", "a"}
ALLOWED_ATTRIBUTES = {
    "id", "class", "fill", "stroke", "stroke-width", "stroke-dasharray", "stroke-opacity", "fill-opacity",
    "d", "points", "x", "y", "cx", "cy", "rx", "ry", "text-anchor", "font-family", "font-size",
    "font-weight", "font-style", "transform", "viewBox",
}  # fmt: skip
_SAFE_VALUE = re.compile(r"^[^<>\"'`\\]*$")
MIN_REDRAW_SECONDS = 30.0
DOT_TIMEOUT = 120.0
DEFAULT_MAX_ASSETS = 300


@dataclass
class MapDrawing:
    svg: str | None
    assets: int
    drawn_at: float
    error: str | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def sanitise_svg(svg_text: str, links: dict[str, str]) -> str:
    """Rebuild Graphviz's SVG from the allow-list; nodes whose tooltip names a key of ``links`` link there.

    Node and edge titles (Graphviz ids like ``a3``) are replaced by the IPs they stand for.
    """
    source = ET.fromstring(svg_text)  # our own dot output; expat expands no external entities
    node_ips: dict[str, str] = {}
    for g in source.iter(f"{{{SVG_NS}}}g"):
        if g.get("class") == "node":
            title = g.find(f"{{{SVG_NS}}}title")
            anchor = g.find(f".//{{{SVG_NS}}}a")
            if title is not None and anchor is not None and anchor.get(f"{{{XLINK_NS}}}title"):
                node_ips[title.text or ""] = anchor.get(f"{{{XLINK_NS}}}title") or ""

    def copy(node: ET.Element, parent: ET.Element | None) -> ET.Element | None:
        name = _local(node.tag)
        if name not in ALLOWED_ELEMENTS or not node.tag.startswith(f"{{{SVG_NS}}}"):
            return None
        out = ET.Element(name) if parent is None else ET.SubElement(parent, name)
        for key, value in node.attrib.items():
            if key in ALLOWED_ATTRIBUTES and _SAFE_VALUE.match(value):
                out.set(key, value)
        if name == "a":
            ip = node.get(f"{{{XLINK_NS}}}title") or ""
            if ip in links:
                out.set("href", links[ip])
                out.set("class", "map-asset")
                out.set("data-ip", ip)
        if name == "title":
            text = node.text or ""
            if "->" in text:
                a, _, b = text.partition("->")
                text = f"{node_ips.get(a, a)} → {node_ips.get(b, b)}"
            out.text = node_ips.get(text, text)
        elif name == "text":
            out.text = node.text
        for child in node:
            copy(child, out)
        return out

    root = copy(source, None)
    if root is None:
        raise ValueError("not an SVG document")
    root.set("xmlns", SVG_NS)
    root.set("class", "map-svg")
    root.set("role", "img")
    root.set("aria-label", "network map")
    return ET.tostring(root, encoding="unicode", method="xml")


def render_svg(dot_text: str) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("Graphviz 'dot' is not installed (Debian: apt-get install graphviz)")
    done = subprocess.run(
        [dot, "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=DOT_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout.decode("utf-8", errors="replace")


class NetworkMap:
    """Draws the map on demand and keeps the last drawing per size."""

    def __init__(self, assets: AssetQueries) -> None:
        self.assets = assets
        self._lock = threading.Lock()
        self._cache: dict[int, tuple[tuple[Any, ...], MapDrawing]] = {}

    def _fingerprint(self) -> tuple[Any, ...]:
        db = self.assets.db
        a = tuple(db.one("SELECT COUNT(*), MAX(last_seen), SUM(messages) FROM assets") or ())
        c = tuple(db.one("SELECT COUNT(*), MAX(last_seen) FROM communications") or ())
        return a + c

    def drawing(self, max_assets: int = DEFAULT_MAX_ASSETS) -> MapDrawing | None:
        tables = self.assets.db.tables()
        if "assets" not in tables or "communications" not in tables:
            return None
        with self._lock:
            mark = self._fingerprint()
            cached = self._cache.get(max_assets)
            if cached is not None and (
                cached[0] == mark or time.time() - cached[1].drawn_at < MIN_REDRAW_SECONDS
            ):
                return cached[1]
            drawing = self._draw(max_assets)
            self._cache[max_assets] = (mark, drawing)
            return drawing

    def _draw(self, max_assets: int) -> MapDrawing:
        store = self.assets.store()
        assets = store.assets()
        if not assets:
            return MapDrawing(None, 0, time.time())
        addresses: dict[int, list[dict[str, Any]]] = {}
        for row in store.query("SELECT * FROM asset_addresses WHERE kind = 'device'"):
            addresses.setdefault(row["asset_id"], []).append(row)
        dot_text = build_dot(assets, addresses, store.comms(), max_assets=max_assets)
        links = {a["ip"]: f"/assets/{a['id']}" for a in assets}
        try:
            svg = sanitise_svg(render_svg(dot_text), links)
        except (RuntimeError, ValueError, ET.ParseError, subprocess.TimeoutExpired) as exc:
            return MapDrawing(None, len(assets), time.time(), error=str(exc))
        return MapDrawing(svg, len(assets), time.time())
