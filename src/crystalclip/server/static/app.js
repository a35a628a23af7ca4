// The crystalclip page: search the index with words, look at one structure (details, 3D unit cell with
// 3Dmol.js, CIF and OPTIMADE downloads, "more like this"), and score an uploaded CIF against labels.
// Plain DOM, no framework, nothing loaded from the network. The page's state lives in its URL
// (?q=...&elements=...&id=...), so a search or a structure can be bookmarked and shared.
"use strict";

const $ = (id) => document.getElementById(id);
const HAS_3DMOL = typeof $3Dmol !== "undefined";
const SOURCE_NAMES = { mp: "Materials Project", amcsd: "AMCSD", "core-mof": "CoRE MOF", mp40: "MP-40 (Chemeleon)" };
const SOURCE_SHORT = { mp: "MP", amcsd: "AMCSD", "core-mof": "CoRE MOF", mp40: "MP-40" };  // the results' badges
const FILTERS = [["elements", "elements"], ["spacegroup", "spacegroup"], ["crystal_system", "crystal-system"],
                 ["source", "source"]];  // [API parameter, element id]
const SUPERCELL_MAX_SITES = 2000;  // 8x that many atoms is about what a software-rendered page still turns
const NO_VIEWER = "3D viewer unavailable: 3Dmol.js is not installed (run `npm ci`, then copy " +
  "node_modules/3dmol/build/3Dmol-min.js into src/crystalclip/server/static/vendor/, see the README).";

let viewer = null;
let shown = null;      // {details, cif} of the selected structure
let listToken = 0;     // the latest search / similar request: older answers are dropped
let selectToken = 0;   // the latest selection
let lastList = null;   // what the results list shows: {kind: "search"} or {kind: "similar", id}

// ---------- small helpers ----------

function show(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

async function api(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error(`cannot reach the crystalclip server (${error.message})`);
  }
  const isJson = response.headers.get("content-type")?.includes("json");
  let body;
  try {
    body = isJson ? await response.json() : await response.text();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body === "object" ? body.detail : null;
    throw new Error(typeof detail === "string" && detail ? detail
      : `the server answered ${response.status} ${response.statusText}`.trim());
  }
  return body;
}

const enc = encodeURIComponent;
const sourceName = (key) => (key ? SOURCE_NAMES[key] || key : "unknown source");
const fixed = (x, digits) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "?");
const fileName = (id) => id.replace(/[^A-Za-z0-9._-]/g, "_") + ".cif";

/** Ca2TiSiO6 -> Ca<sub>2</sub>TiSiO<sub>6</sub>, as nodes (no HTML parsing of server text); a long
 * formula may wrap only between elements. */
function formulaNodes(formula) {
  const nodes = [];
  for (const part of String(formula ?? "?").split(/(\d+(?:\.\d+)?)/).filter(Boolean)) {
    if (/^\d/.test(part)) { nodes.push(el("sub", { textContent: part })); continue; }
    part.split(/(?=[A-Z(])/).forEach((piece, i) => {
      if (i > 0 || nodes.length) nodes.push(el("wbr"));
      nodes.push(document.createTextNode(piece));
    });
  }
  return nodes;
}

/** Hermann–Mauguin symbol as printed: "Fm-3m" -> Fm3̄m (overbar), "P2_1/c" -> P2₁/c (subscript). */
function spacegroupNodes(symbol) {
  const nodes = [];
  for (const m of String(symbol).matchAll(/(-)?(\d)(?:_(\d))?|[^-\d]+|-/g)) {
    if (m[2] === undefined) { nodes.push(document.createTextNode(m[0])); continue; }
    nodes.push(m[1] ? el("span", { className: "bar", textContent: m[2] }) : document.createTextNode(m[2]));
    if (m[3]) nodes.push(el("sub", { textContent: m[3] }));
  }
  return nodes;
}

/** The space group as the server names it (its "spacegroup_symbol") and numbers it. */
function spacegroupCell(symbol, number) {
  const span = el("span", { className: "spacegroup" });
  if (symbol) {
    span.dataset.symbol = symbol;
    span.title = symbol;
    span.append(...spacegroupNodes(symbol));
  }
  if (number != null) span.append(symbol ? ` (${number})` : String(number));
  if (!symbol && number == null) span.append("?");
  return span;
}

// ---------- page state in the URL ----------

function formState() {
  const state = new URLSearchParams();
  const q = $("query").value.trim();
  if (q) state.set("q", q);
  const k = $("k").value.trim();
  if (k && k !== "10") state.set("k", k);
  for (const [key, id] of FILTERS) {
    const value = key === "elements" ? normalElements($(id).value) : $(id).value.trim();
    if (value) state.set(key, value);
  }
  return state;
}

function setUrl(state, push) {
  const url = state.toString() ? `?${state}` : location.pathname;
  if (url === location.search || (url === location.pathname && !location.search)) return;
  history[push ? "pushState" : "replaceState"](null, "", url);
}

function patchUrl(key, value) {
  const state = new URLSearchParams(location.search);
  if (value) state.set(key, value); else state.delete(key);
  setUrl(state, false);
}

async function restoreFromUrl() {
  const state = new URLSearchParams(location.search);
  $("query").value = state.get("q") || "";
  $("k").value = state.get("k") || "10";
  for (const [key, id] of FILTERS) {
    const value = state.get(key) || "";
    if (id === "source" && value && ![...$(id).options].some((o) => o.value === value)) {
      $(id).append(el("option", { value, textContent: sourceName(value) }));  // /health did not list it
    }
    $(id).value = value;
  }
  syncTable();
  if (state.get("like")) await similar(state.get("like"), false);
  else if (state.get("q")) await search(null, false);
  else {
    lastList = null;
    $("results").replaceChildren();
    $("results-head").hidden = true;
    show("search-message", "");
  }
  if (state.get("id")) await select(state.get("id"), null, false);
}

// ---------- status and sources ----------

async function health() {
  try {
    const h = await api("/health");
    const model = h.model ? ` · model ${h.model}` : "";
    show("status", `${h.structures.toLocaleString()} structures indexed${model}`);
    const sources = Object.entries(h.sources || {}).sort((a, b) => b[1] - a[1]);
    $("source").replaceChildren(el("option", { value: "", textContent: "any" }),
      ...sources.map(([key, n]) => el("option", { value: key, textContent: `${sourceName(key)} (${n.toLocaleString()})` })));
    if (sources.length < 2) $("source").title = "this index has a single source";
  } catch (error) {
    show("status", `server unavailable: ${error.message}`, true);
  }
}

// ---------- search and "more like this" ----------

function normalElements(text) {
  return text.split(/[\s,;\-]+/).filter(Boolean)
    .map((s) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase()).join(",");
}

/** The space-group filter as the API takes it: numbers and symbols go as typed (the server knows the
 * symbols and says what is wrong with a bad one); a range such as "195-230" becomes its numbers. */
function spacegroupParam(text) {
  const parts = [];
  for (const token of text.split(",").map((t) => t.trim()).filter(Boolean)) {
    const range = token.match(/^(\d+)\s*-\s*(\d+)$/);
    if (range && 1 <= Number(range[1]) && Number(range[1]) <= Number(range[2]) && Number(range[2]) <= 230) {
      for (let n = Number(range[1]); n <= Number(range[2]); n++) parts.push(n);
    } else parts.push(token);
  }
  return parts.join(",");
}

function filterParams() {
  const params = new URLSearchParams({ k: $("k").value.trim() || "10" });
  for (const [key, id] of FILTERS) {
    const raw = $(id).value.trim();
    const value = key === "elements" ? normalElements(raw) : key === "spacegroup" ? spacegroupParam(raw) : raw;
    if (value) params.set(key, value);
  }
  return params;
}

function filterSummary(params) {
  const parts = [];
  if (params.get("elements")) parts.push(`containing ${params.get("elements").replaceAll(",", ", ")}`);
  if ($("spacegroup").value.trim()) parts.push(`space group ${$("spacegroup").value.trim()}`);
  if (params.get("crystal_system")) parts.push(params.get("crystal_system"));
  if (params.get("source")) parts.push(`from ${sourceName(params.get("source"))}`);
  return parts.length ? ` · ${parts.join(" · ")}` : "";
}

async function search(event, push = true) {
  event?.preventDefault();
  const q = $("query").value.trim();
  if (!q) {
    $("query").focus();
    return show("search-message", "Type what you are looking for, e.g. “a layered cuprate superconductor”.", true);
  }
  let params;
  try {
    params = filterParams();
  } catch (error) {
    return show("search-message", error.message, true);
  }
  params.set("q", q);
  const state = formState();
  if (shown) state.set("id", shown.details.id);
  setUrl(state, push);
  lastList = { kind: "search" };
  await list(`/api/search?${params}`, (n) =>
    (n ? `${n} result${n === 1 ? "" : "s"} for “${q}”` : `No structure matches “${q}” with these filters.`)
    + filterSummary(params));
}

async function similar(id, push = true) {
  let params;
  try {
    params = filterParams();
  } catch (error) {
    return show("search-message", error.message, true);
  }
  const state = formState();
  state.delete("q");
  state.set("like", id);
  state.set("id", id);
  setUrl(state, push);
  lastList = { kind: "similar", id };
  await list(`/api/similar/${enc(id)}?${params}`, (n) =>
    (n ? `${n} structure${n === 1 ? "" : "s"} like ${id}` : `No structure like ${id} matches these filters.`)
    + filterSummary(params), id);
}

async function list(url, message, selectedId = null) {
  const token = ++listToken;
  show("search-message", "searching…");
  $("results").setAttribute("aria-busy", "true");
  try {
    const data = await api(url);
    if (token !== listToken) return;
    $("results").replaceChildren(...data.results.map(resultItem));
    $("examples").hidden = true;
    $("results-head").hidden = data.results.length === 0;
    show("search-message", message(data.results.length));
    if (selectedId) markSelected(selectedId);
  } catch (error) {
    if (token !== listToken) return;
    $("results").replaceChildren();
    $("results-head").hidden = true;
    show("search-message", error.message, true);
  } finally {
    if (token === listToken) $("results").removeAttribute("aria-busy");
  }
}

function resultItem(r) {
  const li = el("li", { className: "result result-grid", tabIndex: 0 });
  li.dataset.id = r.id;
  li.dataset.source = r.source ?? "";
  const sg = spacegroupCell(r.spacegroup_symbol, r.spacegroup_number);
  li.append(
    el("span", { className: "name" }, el("span", { className: "formula" }, formulaNodes(r.formula)),
       el("span", { className: "id", textContent: r.id })),
    el("span", { className: "meta" },
       el("span", { className: "sg", title: "space group" }, r.spacegroup_number == null ? "?" : sg),
       el("span", { className: "system", textContent: r.crystal_system || "?" }),
       el("span", { className: "source" }, el("span", { className: `badge src-${r.source}`, title: sourceName(r.source),
                                                         textContent: SOURCE_SHORT[r.source] || sourceName(r.source) })),
       el("span", { className: "score num", title: "cosine similarity of the embeddings", textContent: fixed(r.score, 3) })),
    el("span", { className: "text", textContent: r.text || "" }));
  li.addEventListener("click", () => select(r.id, r));
  li.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      select(r.id, r);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = event.key === "ArrowDown" ? li.nextElementSibling : li.previousElementSibling;
      if (next) { next.focus(); next.click(); }
    }
  });
  return li;
}

function markSelected(id) {
  for (const li of $("results").children) {
    li.classList.toggle("selected", li.dataset.id === id);
    if (li.dataset.id === id) li.setAttribute("aria-current", "true"); else li.removeAttribute("aria-current");
  }
}

// ---------- one structure: details, viewer ----------

async function select(id, summary = null, updateUrl = true) {
  const token = ++selectToken;
  $("details").classList.remove("empty");
  markSelected(id);
  if (updateUrl) patchUrl("id", id);
  $("view-title").replaceChildren(...(summary ? formulaNodes(summary.formula) : [id]),
    summary ? el("span", { className: "title-id", textContent: ` (${id})` }) : "");
  show("details-message", "loading…");
  show("viewer-message", HAS_3DMOL ? "loading the structure…" : NO_VIEWER, !HAS_3DMOL);
  const [details, cif] = await Promise.allSettled([
    api(`/api/details/${enc(id)}`), api(`/api/structures/${enc(id)}`)]);
  if (token !== selectToken) return;
  if (details.status === "rejected") {
    shown = null;
    $("actions").hidden = true;
    $("properties").hidden = true;
    $("legend").replaceChildren();
    $("classify-selected").disabled = true;
    if (viewer) { viewer.clear(); viewer.render(); }
    show("viewer-message", "");
    return show("details-message", `cannot show ${id}: ${details.reason.message}`, true);
  }
  show("details-message", "");
  shown = { details: details.value, cif: cif.status === "fulfilled" ? cif.value : null };
  renderDetails(details.value);
  if (!HAS_3DMOL) return show("viewer-message", NO_VIEWER, true);
  if (cif.status === "rejected") {
    if (viewer) { viewer.clear(); viewer.render(); }
    return show("viewer-message", `no 3D view of ${id}: ${cif.reason.message}`, true);
  }
  draw();
}

function sourceLinkLabel(link) {
  try {
    const host = new URL(link).hostname;
    if (host.endsWith("materialsproject.org")) return "Materials Project";
    if (host === "doi.org" || host.endsWith(".doi.org")) return "Publication (DOI)";
    if (host.endsWith("ccdc.cam.ac.uk")) return "CSD entry";
    return `Source page (${host})`;
  } catch {
    return "Source page";
  }
}

function renderDetails(d) {
  const title = $("view-title");
  title.replaceChildren(...formulaNodes(d.formula), el("span", { className: "title-id", textContent: ` (${d.id})` }));
  $("details-source").hidden = !d.source;
  $("details-source").textContent = sourceName(d.source);
  $("details-source").className = `badge src-${d.source}`;

  const link = $("source-link");
  link.hidden = !d.link;
  if (d.link) {
    link.href = d.link;
    link.textContent = `${sourceLinkLabel(d.link)} ↗`;
    link.title = d.link;
  } else {
    link.removeAttribute("href");
  }
  $("download-cif").href = `/api/structures/${enc(d.id)}`;
  $("download-cif").download = fileName(d.id);
  $("optimade-link").href = `/api/structures/${enc(d.id)}?format=optimade`;
  $("actions").hidden = false;
  $("classify-selected").disabled = false;

  const L = d.lattice || {};
  const rows = [
    ["formula", "Formula", formulaNodes(d.formula)],
    ["spacegroup", "Space group", d.spacegroup_symbol || d.spacegroup_number != null
      ? spacegroupCell(d.spacegroup_symbol, d.spacegroup_number) : "unknown"],
    ["crystal-system", "Crystal system", d.crystal_system || "unknown"],
    ["lattice", "Lattice", `a = ${fixed(L.a, 4)} Å, b = ${fixed(L.b, 4)} Å, c = ${fixed(L.c, 4)} Å`],
    ["angles", "Angles", `α = ${fixed(L.alpha, 3)}°, β = ${fixed(L.beta, 3)}°, γ = ${fixed(L.gamma, 3)}°`],
    ["volume", "Volume", `${fixed(L.volume, 3)} Å³`],
    ["density", "Density", `${fixed(d.density, 3)} g/cm³`],
    ["nsites", "Sites", `${d.nsites} in the cell`],
    ["elements", "Elements", (d.elements || []).join(", ")],
    ["source", "Source", `${sourceName(d.source)} · ${d.id}`],
  ];
  $("properties-table").tBodies[0].replaceChildren(...rows.map(([field, name, value]) => {
    const tr = el("tr", {}, el("th", { scope: "row", textContent: name }), el("td", {}, value));
    tr.dataset.field = field;
    return tr;
  }));
  $("reference").textContent = d.reference || "";
  $("reference").hidden = !d.reference;

  const texts = d.texts || [];
  $("texts-title").textContent = texts.length
    ? `Descriptions paired with this structure (${texts.length})` : "No description is paired with this structure";
  $("texts").replaceChildren(...texts.map((text) => el("li", { textContent: text })));
  $("properties").hidden = false;
  legend(d.elements || []);

  const big = d.nsites > SUPERCELL_MAX_SITES;
  $("supercell").disabled = big;
  if (big) $("supercell").checked = false;
  $("supercell").parentElement.title = big ? `${d.nsites} sites: too many to draw 8 cells in the browser` : "";
}

function elementColor(symbol) {
  if (!HAS_3DMOL || !$3Dmol.elementColors) return "#b0b0b0";
  const colors = $3Dmol.elementColors;
  const value = colors.Jmol?.[symbol] ?? colors.Jmol?.[symbol.toUpperCase()] ?? colors.defaultColor ?? 0xb0b0b0;
  return `#${Number(value).toString(16).padStart(6, "0")}`;
}

function legend(elements) {
  $("legend").replaceChildren(...elements.map((symbol) => {
    const swatch = el("span", { className: "swatch" });
    swatch.style.background = elementColor(symbol);
    const item = el("span", { className: "legend-item", title: `${symbol}: Jmol colour` }, swatch, symbol);
    item.dataset.element = symbol;
    return item;
  }));
}

function styleSpec() {
  const jmol = { colorscheme: "Jmol" };
  switch ($("view-style").value) {
    case "spheres": return { sphere: { scale: 0.65, ...jmol } };
    case "sticks": return { stick: { radius: 0.15, ...jmol }, sphere: { scale: 0.12, ...jmol } };
    default: return { sphere: { scale: 0.3, ...jmol }, stick: { radius: 0.12, ...jmol } };
  }
}

function draw(keepView = false) {
  if (!HAS_3DMOL || !shown?.cif) return;
  try {
    if (!viewer) {
      viewer = $3Dmol.createViewer($("viewer"), { backgroundColor: "white" });
      if (!viewer) throw new Error("this browser cannot draw WebGL");
      window.crystalclipViewer = viewer;  // for the page's tests and the curious: viewer.getModel()
    }
    const view = keepView ? viewer.getView() : null;
    viewer.clear();
    const model = viewer.addModel(shown.cif, "cif",
      { doAssembly: true, normalizeAssembly: true, duplicateAssemblyAtoms: true });
    const supercell = $("supercell").checked && !$("supercell").disabled;
    const sites = model.selectedAtoms({}).length;
    $("edges").disabled = supercell;  // 8 whole cells: no images to add
    if (supercell) viewer.replicateUnitCell(2, 2, 2, model, true);
    else if ($("edges").checked) viewer.replicateUnitCell(1, 1, 1, model, true);  // images on faces, edges, corners
    viewer.setStyle({}, styleSpec());
    viewer.addUnitCell(model);
    if (view) viewer.setView(view); else viewer.zoomTo();
    viewer.render();
    const atoms = model.selectedAtoms({}).length;
    const images = atoms > sites ? ` (${atoms.toLocaleString()} drawn with their images on the cell's edges)` : "";
    const drawn = supercell ? `${atoms.toLocaleString()} atoms in 2×2×2 cells`
      : `${sites.toLocaleString()} atoms in the unit cell${images}`;
    show("viewer-message", `${drawn} · drag to rotate, scroll to zoom, right-drag to move`);
  } catch (error) {
    show("viewer-message", `cannot show ${shown.details.id}: ${error.message}`, true);
  }
}

// ---------- periodic table for the elements filter ----------

const TABLE = [
  "H . . . . . . . . . . . . . . . . He",
  "Li Be . . . . . . . . . . B C N O F Ne",
  "Na Mg . . . . . . . . . . Al Si P S Cl Ar",
  "K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr",
  "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe",
  "Cs Ba La Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn",
  "Fr Ra Ac Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og",
  ". . . Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu",
  ". . . Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr",
];

function buildTable() {
  const table = $("periodic-table");
  TABLE.forEach((row, r) => row.split(" ").forEach((symbol, c) => {
    if (symbol === ".") return;
    const button = el("button", { type: "button", className: "element", textContent: symbol, title: symbol });
    button.style.gridRow = String(r + 1 + (r >= 7 ? 1 : 0));  // a gap above the f block
    button.style.gridColumn = String(c + 1);
    button.dataset.element = symbol;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => toggleElement(symbol));
    table.append(button);
  }));
  table.append(el("p", { className: "hint table-hint", textContent: "results contain all the elements picked" }));
}

function pickedElements() {
  return normalElements($("elements").value).split(",").filter(Boolean);
}

function toggleElement(symbol) {
  const picked = pickedElements();
  const at = picked.indexOf(symbol);
  if (at >= 0) picked.splice(at, 1); else picked.push(symbol);
  $("elements").value = picked.join(",");
  syncTable();
}

function syncTable() {
  const picked = new Set(pickedElements());
  for (const button of $("periodic-table").querySelectorAll(".element")) {
    const on = picked.has(button.dataset.element);
    button.classList.toggle("picked", on);
    button.setAttribute("aria-pressed", String(on));
  }
}

// ---------- zero-shot classification ----------

async function classify(event) {
  event.preventDefault();
  show("classify-message", "classifying…");
  $("classify-results").replaceChildren();
  try {
    const data = await api("/api/classify", { method: "POST", body: new FormData($("classify-form")) });
    const table = el("table");
    const head = table.insertRow();
    for (const text of ["structure", ...data.labels]) head.append(el("th", { textContent: text }));
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
    show("classify-message", `template: ${data.template} · softmax over the labels`);
  } catch (error) {
    show("classify-message", error.message, true);
  }
}

async function classifySelected() {
  if (!shown) return;
  try {
    const cif = shown.cif ?? await api(`/api/structures/${enc(shown.details.id)}`);
    const files = new DataTransfer();
    files.items.add(new File([cif], fileName(shown.details.id), { type: "text/plain" }));
    $("cif-file").files = files.files;
    show("classify-message", `${shown.details.id} is the structure to classify`);
    if (!$("labels").value.trim()) $("labels").focus();
  } catch (error) {
    show("classify-message", error.message, true);
  }
}

// ---------- wiring ----------

$("search-form").addEventListener("submit", search);
$("classify-form").addEventListener("submit", classify);
$("classify-selected").addEventListener("click", classifySelected);
$("more-like-this").addEventListener("click", () => shown && similar(shown.details.id));
$("supercell").addEventListener("change", () => draw(false));  // 8 cells: zoom out to see them
$("edges").addEventListener("change", () => draw(true));
$("view-style").addEventListener("change", () => draw(true));
$("reset-view").addEventListener("click", () => { if (viewer) { viewer.zoomTo(); viewer.render(); } });
$("elements").addEventListener("input", syncTable);
$("table-toggle").addEventListener("click", () => {
  const table = $("periodic-table");
  table.hidden = !table.hidden;
  $("table-toggle").setAttribute("aria-expanded", String(!table.hidden));
});
$("clear-filters").addEventListener("click", () => {
  for (const [, id] of FILTERS) $(id).value = "";
  syncTable();
});
for (const [, id] of FILTERS.slice(2)) {  // a changed dropdown reruns what the list shows at once
  $(id).addEventListener("change", () => {
    if (lastList?.kind === "similar") similar(lastList.id);
    else if ($("query").value.trim()) search(null);
  });
}
for (const example of $("examples").querySelectorAll("a")) {  // run in place, no reload
  example.addEventListener("click", (event) => {
    event.preventDefault();
    history.pushState(null, "", example.getAttribute("href"));
    restoreFromUrl();
  });
}
window.addEventListener("popstate", restoreFromUrl);
window.addEventListener("resize", () => viewer?.resize());

buildTable();
if (!HAS_3DMOL) show("viewer-message", NO_VIEWER, true);
health().then(restoreFromUrl);
