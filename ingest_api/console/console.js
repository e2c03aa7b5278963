// The investigator console: sign-in, cases and events, fenced searches, results on a grid, a map and a timeline.
// `window.witnessConsole` exposes the page's state for the browser tests (nothing secret: the token stays in
// sessionStorage, which any script of this origin can read anyway).

import * as api from "./api.js";
import { createMap } from "./map.js";
import { groupHits, renderDetail, renderGrid } from "./results.js";
import { auditLine, fromUtcInput, readFence, readQuery, ROUTES, toUtcInput } from "./search.js";
import { renderTimeline } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const state = { me: null, config: null, cases: [], events: [], search: null, groups: [], open: null, searches: 0,
  ready: false };
window.witnessConsole = state;

function say(message, kind = "error") {
  const box = $("message");
  box.textContent = message;
  box.className = kind;
  box.hidden = !message;
}

function showLogin() {
  $("login-view").hidden = false;
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  state.me = null;
}

function item(tag, content, className = "") {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

function selectTab(id) {
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === id));
    $(button.dataset.tab).hidden = button.dataset.tab !== id;
  }
}

const SLIDER_MARGIN_MIN = 6 * 60;

/** Range sliders over the event's window +- 6 h, in minutes from the slider origin; they write the UTC inputs. */
function setUpWindowSliders(event) {
  const origin = Date.parse(`${toUtcInput(event.starts_at)}Z`) - SLIDER_MARGIN_MIN * 60000;
  const span = (Date.parse(`${toUtcInput(event.ends_at)}Z`) - origin) / 60000 + SLIDER_MARGIN_MIN;
  state.sliderOrigin = origin;
  for (const id of ["window-from", "window-to"]) $(id).max = String(Math.round(span));
  $("window-from").value = String(SLIDER_MARGIN_MIN);
  $("window-to").value = String(Math.round(span - SLIDER_MARGIN_MIN));
}

function slideWindow(moved) {
  let from = Number($("window-from").value), to = Number($("window-to").value);
  if (from >= to) {  // keep the window non-empty: push the other end along
    if (moved === "window-from") to = Math.min(from + 5, Number($("window-to").max)); else from = Math.max(to - 5, 0);
    $("window-from").value = String(from);
    $("window-to").value = String(to);
  }
  const at = (minutes) => new Date(state.sliderOrigin + minutes * 60000).toISOString().slice(0, 19);
  $("fence-start").value = at(from);
  $("fence-end").value = at(to);
}

for (const id of ["window-from", "window-to"]) {
  document.getElementById(id).addEventListener("input", () => slideWindow(id));
}

function useEvent(event, caseId) {
  $("fence-lat").value = event.lat;
  $("fence-lon").value = event.lon;
  $("fence-radius").value = event.radius_m;
  $("fence-start").value = toUtcInput(event.starts_at);
  $("fence-end").value = toUtcInput(event.ends_at);
  setUpWindowSliders(event);
  if (caseId) $("case-id").value = caseId;
  showCaseName();
  drawMap();
}

function showCaseName() {
  const found = state.cases.find((c) => c.id === $("case-id").value.trim());
  $("case-name").textContent = found ? `${found.reference} — ${found.title}` : "";
}

function renderCases() {
  const list = $("cases");
  list.replaceChildren();
  const byId = new Map(state.events.map((e) => [e.id, e]));
  for (const found of state.cases) {
    const card = item("li", "");
    card.append(item("h3", `${found.reference} — ${found.title}`));
    card.append(item("p", `case id ${found.id} · investigators: ${found.investigators.join(", ") || "none"}`, "note"));
    const events = document.createElement("ul");
    for (const id of found.event_ids) {
      const event = byId.get(id);
      if (!event) continue;
      const row = item("li", `${event.name} — ${event.lat.toFixed(5)}, ${event.lon.toFixed(5)} ±${event.radius_m} m — `
        + `${event.starts_at} → ${event.ends_at}${event.accepts_uploads ? "" : " (closed)"} `, "event-row");
      const link = item("a", "upload link");
      link.href = event.upload_link;
      const search = item("button", "Search around this event");
      search.type = "button";
      search.addEventListener("click", () => {
        useEvent(event, found.id);
        selectTab("search-tab");
      });
      row.append(link, " ", search);
      events.appendChild(row);
    }
    card.appendChild(events);
    list.appendChild(card);
  }
  if (!state.cases.length) list.appendChild(item("li", "No case is assigned to you.", "note"));
  $("event-case").replaceChildren(...state.cases.map((c) => new Option(`${c.reference} — ${c.title}`, c.id)));
  $("case-list").replaceChildren(...state.cases.map((c) => new Option(c.reference, c.id)));
}

async function loadCases() {
  try {
    [state.cases, state.events] = await Promise.all([api.call("GET", "/v1/cases"), api.call("GET", "/v1/events")]);
  } catch (error) {
    if (error.status !== 403) throw error;
    [state.cases, state.events] = [[], []];
    say(`Your role (${state.me.role}) has no cases: ${error.message}`, "info");
  }
  renderCases();
  if (state.events.length && !$("fence-lat").value) {
    const event = state.events[0];
    useEvent(event, state.cases.find((c) => c.event_ids.includes(event.id))?.id);
  }
}

async function boot() {
  try {
    state.me = await api.call("GET", "/v1/auth/me");
    state.config = await api.call("GET", "/console/config");
  } catch (error) {
    if (error.status === 401) return showLogin();
    throw error;
  }
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${state.me.username} (${state.me.role})`;
  await loadCases();
  drawMap();
  state.ready = true;
}

const map = createMap($("map"), {
  onMove(lat, lon) {
    $("fence-lat").value = lat;
    $("fence-lon").value = lon;
    drawMap();
  },
  onPick: (key) => openGroup(key),
});

function drawMap() {
  const circle = readFence(document).circle;
  if (![circle.lat, circle.lon, circle.radius_m].every(Number.isFinite) || circle.radius_m <= 0) return;
  if (!$("fence-lat").value || !$("fence-lon").value) return;
  const results = state.groups.map((g) => ({ key: g.key, lat: g.best.lat, lon: g.best.lon,
    trusted: g.best.position_trusted, label: `${g.best.photo_id} (score ${g.best.score.toFixed(3)})` }));
  const { offMap } = map.render({ fence: circle, results, events: state.events, tileUrl: state.config?.tile_url });
  $("map-note").textContent = offMap ? `${offMap} result(s) without a position or off the map` : "";
}

function openGroup(key) {
  const group = state.groups.find((g) => g.key === key);
  if (!group) return;
  state.open = group;
  renderDetail($("detail"), group, { thumbnailMaxSide: state.config.thumbnail_max_side });
  if (!$("detail").open) $("detail").showModal();
}

function showResults(path, body, outcome) {
  state.search = { path, body, outcome };
  state.groups = groupHits(outcome.hits);
  const known = state.cases.find((c) => c.id === body.case_id);
  $("audit-line").textContent = auditLine(path, body, known ? known.reference : "");
  $("audit-line").hidden = false;
  const shown = outcome.hits.length;
  $("result-summary").textContent = `${shown} result(s) in ${state.groups.length} group(s) — ${outcome.candidates} `
    + `candidate(s) in the fence, ${outcome.exact ? "exact search" : "approximate search"}, index ${outcome.index_version}`;
  renderGrid($("results"), state.groups, (group) => openGroup(group.key));
  renderTimeline($("timeline"), state.groups, body.fence, openGroup);
  drawMap();
}

async function runSearch(path, body) {
  say("");
  $("run-search").disabled = true;
  try {
    const outcome = await api.call("POST", path, body);
    showResults(path, body, outcome);
  } catch (error) {
    state.groups = [];
    $("results").replaceChildren();
    $("result-summary").textContent = "";
    say(`Search refused or failed (${error.code || "error"}): ${error.message}`);
    if (!api.token()) showLogin();
  } finally {
    state.searches += 1;
    $("run-search").disabled = false;
  }
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  try {
    await api.login($("username").value, $("password").value);
    $("password").value = "";
    await boot();
  } catch (error) {
    say(`Sign-in refused: ${error.message}`);
  }
});

$("logout").addEventListener("click", async () => {
  await api.logout().catch(() => undefined);
  showLogin();
});

for (const button of document.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => selectTab(button.dataset.tab));
}

$("event-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("");
  try {
    const created = await api.call("POST", "/v1/events", {
      case_id: $("event-case").value, name: $("event-name").value, lat: Number($("event-lat").value),
      lon: Number($("event-lon").value), radius_m: Number($("event-radius").value),
      starts_at: fromUtcInput($("event-start").value), ends_at: fromUtcInput($("event-end").value),
    });
    $("event-link").href = created.upload_link;
    $("event-link").textContent = created.upload_link;
    $("event-qr").src = created.qr_svg_url;
    $("event-created").hidden = false;
    say(`Event “${created.name}” created; share its link or QR code with witnesses.`, "info");
    await loadCases();
  } catch (error) {
    say(`Event not created: ${error.message}`);
  }
});

$("search-kind").addEventListener("change", () => {
  const kind = $("search-kind").value;
  for (const field of document.querySelectorAll("[data-for]")) field.hidden = !field.dataset.for.split(" ").includes(kind);
});

for (const id of ["fence-lat", "fence-lon", "fence-radius"]) $(id).addEventListener("change", drawMap);
$("case-id").addEventListener("input", showCaseName);

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  let query;
  try {
    query = await readQuery(document);
  } catch (error) {
    return say(error.message);
  }
  await runSearch(...query);
});

$("more-like").addEventListener("click", async () => {
  const { body } = state.search;
  const similar = { fence: body.fence, case_id: body.case_id, legal_basis: body.legal_basis,
    detection_id: state.open.best.detection_id, k: 10 };
  $("detail").close();
  await runSearch(ROUTES.similar, similar);
});

$("close-detail").addEventListener("click", () => $("detail").close());

if (api.token()) boot().catch((error) => say(error.message));
else showLogin();
