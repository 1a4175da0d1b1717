// otsentry analyst console: the little behaviour the pages need. Written for the project, served
// from the console itself (no CDN, no build step); the CSP allows scripts from this origin only.
"use strict";

(function () {
  // Bulk triage: one checkbox selects every alert on the page.
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    all.addEventListener("change", function () {
      for (const box of document.querySelectorAll("input[name=ids]")) box.checked = all.checked;
    });
  }

  // Network map: wheel to zoom around the pointer, drag to pan, buttons to zoom or fit.
  const view = document.querySelector(".map-view");
  const svg = view && view.querySelector("svg");
  if (!svg || !svg.viewBox || !svg.viewBox.baseVal) return;
  const base = svg.viewBox.baseVal;
  const home = [base.x, base.y, base.width, base.height];
  let box = home.slice();
  const apply = function () { svg.setAttribute("viewBox", box.join(" ")); };
  const toSvg = function (clientX, clientY) {
    const point = svg.createSVGPoint();
    point.x = clientX;
    point.y = clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  };
  const zoom = function (factor, cx, cy) {
    const width = box[2] * factor;
    if (width < home[2] / 40 || width > home[2] * 8) return;
    box = [cx - (cx - box[0]) * factor, cy - (cy - box[1]) * factor, width, box[3] * factor];
    apply();
  };
  svg.addEventListener("wheel", function (e) {
    e.preventDefault();
    const p = toSvg(e.clientX, e.clientY);
    zoom(e.deltaY < 0 ? 0.8 : 1.25, p.x, p.y);
  }, { passive: false });

  let drag = null;
  let moved = false;
  svg.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) return;
    drag = { x: e.clientX, y: e.clientY };
    moved = false;
  });
  window.addEventListener("pointermove", function (e) {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    const dy = e.clientY - drag.y;
    if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    moved = true;
    view.classList.add("dragging");
    const rect = svg.getBoundingClientRect();
    const scale = Math.max(box[2] / rect.width, box[3] / rect.height);
    box[0] -= dx * scale;
    box[1] -= dy * scale;
    drag = { x: e.clientX, y: e.clientY };
    apply();
  });
  window.addEventListener("pointerup", function () {
    drag = null;
    view.classList.remove("dragging");
  });
  // A drag that ends on an asset must not open it.
  svg.addEventListener("click", function (e) {
    if (moved) { e.preventDefault(); moved = false; }
  }, true);

  for (const button of document.querySelectorAll("[data-zoom]")) {
    button.addEventListener("click", function () {
      const kind = button.getAttribute("data-zoom");
      if (kind === "reset") { box = home.slice(); apply(); return; }
      zoom(kind === "in" ? 0.8 : 1.25, box[0] + box[2] / 2, box[1] + box[3] / 2);
    });
  }
})();
