// Timeline of result groups by capture time, one lane per clock provenance: trusted, inferred, unknown.
// Unknown times cannot be placed on the axis; they are lined up in their own lane so none is silently left out.

import { el } from "./map.js";
import { formatTime, timeProvenance } from "./results.js";

const WIDTH = 480;
const HEIGHT = 190;
const LEFT = 70;
const RIGHT = 16;
const LANES = { trusted: 50, inferred: 100, unknown: 160 };
const STEPS_S = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

export function renderTimeline(svg, groups, window, onPick) {
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.replaceChildren();
  const times = groups.filter((g) => g.best.taken_at_utc).map((g) => Date.parse(g.best.taken_at_utc));
  const start = Math.min(Date.parse(window.start), ...times);
  const end = Math.max(Date.parse(window.end), ...times, start + 60_000);
  const x = (t) => LEFT + ((t - start) / (end - start)) * (WIDTH - LEFT - RIGHT);
  for (const [lane, y] of Object.entries(LANES)) {
    el("line", { class: `lane clock-${lane}`, x1: LEFT, x2: WIDTH - RIGHT, y1: y, y2: y }, svg);
    el("text", { class: "lane-label", x: 4, y: y + 4 }, svg).textContent = lane;
  }
  const step = STEPS_S.find((s) => (end - start) / 1000 / s <= 5) || STEPS_S.at(-1);
  for (let t = Math.ceil(start / 1000 / step) * step * 1000; t <= end; t += step * 1000) {
    el("line", { class: "tick", x1: x(t), x2: x(t), y1: 22, y2: LANES.inferred + 10 }, svg);
    const iso = new Date(t).toISOString();
    el("text", { class: "tick-label", x: x(t), y: 16 }, svg).textContent = step >= 86400 ? iso.slice(0, 10)
      : iso.slice(11, 16);
  }
  el("rect", { class: "window", x: x(Date.parse(window.start)), y: 28, height: LANES.inferred - 6,
    width: Math.max(1, x(Date.parse(window.end)) - x(Date.parse(window.start))) }, svg);
  const unknown = groups.filter((g) => !g.best.taken_at_utc);
  groups.forEach((group) => {
    const provenance = timeProvenance(group.best);
    const cx = provenance === "unknown"
      ? LEFT + ((unknown.indexOf(group) + 0.5) / unknown.length) * (WIDTH - LEFT - RIGHT)
      : x(Date.parse(group.best.taken_at_utc));
    const mark = el("circle", { class: `mark clock-${provenance}`, cx, cy: LANES[provenance],
      r: group.count > 1 ? 8 : 6, "data-group": group.key, tabindex: 0 }, svg);
    el("title", {}, mark).textContent = `${formatTime(group.best.taken_at_utc)} — clock ${provenance}`
      + (group.count > 1 ? ` — ${group.count} near-duplicates` : "");
    mark.addEventListener("click", () => onPick(group.key));
  });
}
