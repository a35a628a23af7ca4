// The crystalclip page: search the index, show a structure's unit cell with 3Dmol.js, classify an upload.
"use strict";

const $ = (id) => document.getElementById(id);
let viewer = null;

function show(id, text, isError = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function api(url, options) {
  const response = await fetch(url, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

async function health() {
  try {
    const h = await api("/health");
    show("status", `${h.structures.toLocaleString()} structures indexed`);
  } catch (error) {
    show("status", `server unavailable: ${error.message}`, true);
  }
}

async function search(event) {
  event.preventDefault();
  const q = $("query").value.trim();
  if (!q) return show("search-message", "Type what you are looking for.", true);
  const params = new URLSearchParams({ q, k: $("k").value || "10" });
  for (const [key, id] of [["elements", "elements"], ["spacegroup", "spacegroup"], ["crystal_system", "crystal-system"]]) {
    if ($(id).value.trim()) params.set(key, $(id).value.trim());
  }
  show("search-message", "searching…");
  $("results").replaceChildren();
  try {
    const data = await api(`/api/search?${params}`);
    show("search-message", data.results.length ? `${data.results.length} results` : "No structure matches.");
    $("results").replaceChildren(...data.results.map(resultItem));
  } catch (error) {
    show("search-message", error.message, true);
  }
}

function resultItem(r) {
  const li = document.createElement("li");
  li.className = "result";
  li.dataset.id = r.id;
  const sg = r.spacegroup_number == null ? "space group ?" : `space group ${r.spacegroup_number}`;
  const parts = [["formula", r.formula], ["meta", `${sg} · ${r.crystal_system || "?"} · score ${r.score.toFixed(3)} · ${r.id}`],
                 ["text", r.text || ""]];
  for (const [cls, text] of parts) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  li.addEventListener("click", () => select(li, r));
  return li;
}

async function select(li, r) {
  document.querySelectorAll(".result.selected").forEach((el) => el.classList.remove("selected"));
  li.classList.add("selected");
  $("view-title").textContent = `${r.formula} (${r.id})`;
  if (typeof $3Dmol === "undefined") {
    return show("viewer-message", "3D viewer unavailable: 3Dmol.js is not installed in static/vendor/ " +
      "(run `npm ci` and copy node_modules/3dmol/build/3Dmol-min.js there, see the README).", true);
  }
  try {
    const cif = await api(`/api/structures/${encodeURIComponent(r.id)}`);
    if (!viewer) viewer = $3Dmol.createViewer($("viewer"), { backgroundColor: "white" });
    if (!viewer) throw new Error("this browser cannot draw WebGL");
    viewer.clear();
    viewer.addModel(cif, "cif", { doAssembly: true, normalizeAssembly: true, duplicateAssemblyAtoms: true });
    viewer.setStyle({}, { sphere: { scale: 0.3, colorscheme: "Jmol" }, stick: { radius: 0.12, colorscheme: "Jmol" } });
    viewer.addUnitCell();
    viewer.zoomTo();
    viewer.render();
    show("viewer-message", "drag to rotate, scroll to zoom");
  } catch (error) {
    show("viewer-message", `cannot show ${r.id}: ${error.message}`, true);
  }
}

async function classify(event) {
  event.preventDefault();
  show("classify-message", "classifying…");
  $("classify-results").replaceChildren();
  try {
    const data = await api("/api/classify", { method: "POST", body: new FormData($("classify-form")) });
    const table = document.createElement("table");
    const head = table.insertRow();
    for (const text of ["structure", ...data.labels]) head.append(Object.assign(document.createElement("th"), { textContent: text }));
    for (const r of data.results) {
      const row = table.insertRow();
      row.insertCell().textContent = r.id;
      const best = Math.max(...Object.values(r.probabilities));
      for (const label of data.labels) {
        const cell = row.insertCell();
        cell.textContent = r.probabilities[label].toFixed(3);
        if (r.probabilities[label] === best) cell.className = "best";
      }
    }
    $("classify-results").append(table);
    show("classify-message", `template: ${data.template}`);
  } catch (error) {
    show("classify-message", error.message, true);
  }
}

$("search-form").addEventListener("submit", search);
$("classify-form").addEventListener("submit", classify);
if (typeof $3Dmol === "undefined") {
  show("viewer-message", "3D viewer unavailable: 3Dmol.js is not installed (run `npm ci`, then copy " +
    "node_modules/3dmol/build/3Dmol-min.js into src/crystalclip/server/static/vendor/).", true);
}
health();
