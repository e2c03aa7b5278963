// Results: near-duplicates collapsed into one card, the grid, and the detail view with the detection box.

import { el } from "./map.js";

/** "trusted" (camera/device clock with a known offset), "inferred" (a time without proof) or "unknown". */
export function timeProvenance(hit) {
  if (!hit.taken_at_utc) return "unknown";
  return hit.time_trusted ? "trusted" : "inferred";
}

/** Where the position came from: the API's source when it sends one, else trusted / untrusted / none. */
export function positionProvenance(hit) {
  if (hit.lat == null || hit.lon == null) return "none";
  if (hit.position_source) return hit.position_source;
  return hit.position_trusted ? "trusted (EXIF, device or pin)" : "untrusted";
}

function duplicateKeys(hit) {
  const attrs = hit.attributes || {};
  const keys = [`photo:${hit.photo_id}`];
  const sha = hit.photo_sha256 || hit.sha256 || attrs.photo_sha256;
  const phash = hit.phash || attrs.phash;
  if (sha) keys.push(`sha:${sha}`);
  if (phash && !/^0+$/.test(phash)) keys.push(`phash:${phash}`); // an all-zero hash means "not computed"
  return keys;
}

/** Hits sharing a photo id, a photo SHA-256 or a perceptual hash (transitively) become one group, best first. */
export function groupHits(hits) {
  const parent = new Map();
  const find = (key) => {
    while (parent.get(key) !== key) {
      parent.set(key, parent.get(parent.get(key)));
      key = parent.get(key);
    }
    return key;
  };
  for (const hit of hits) {
    const keys = duplicateKeys(hit);
    for (const key of keys) if (!parent.has(key)) parent.set(key, key);
    for (const key of keys.slice(1)) parent.set(find(key), find(keys[0]));
  }
  const groups = new Map();
  for (const hit of hits) {
    const root = find(duplicateKeys(hit)[0]);
    if (!groups.has(root)) groups.set(root, []);
    groups.get(root).push(hit);
  }
  return [...groups.values()]
    .map((members) => {
      const sorted = [...members].sort((a, b) => b.score - a.score);
      return { key: sorted[0].detection_id, best: sorted[0], hits: sorted, count: sorted.length,
        photos: new Set(sorted.map((h) => h.photo_id)).size };
    })
    .sort((a, b) => b.best.score - a.best.score);
}

export function formatTime(iso) {
  return iso ? `${iso.replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, "")} UTC` : "time unknown";
}

function label(hit) {
  const attrs = hit.attributes || {};
  return attrs.plate_text || [attrs.colour || attrs.color, attrs.class].filter(Boolean).join(" ") || hit.kind;
}

function text(tag, content, className = "") {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}

export function renderGrid(list, groups, onOpen) {
  list.replaceChildren();
  for (const group of groups) {
    const hit = group.best;
    const item = document.createElement("li");
    const card = document.createElement("button");
    card.type = "button";
    card.className = "card";
    card.dataset.group = group.key;
    const image = document.createElement("img");
    image.alt = `crop of ${label(hit)}`;
    image.loading = "lazy";
    if (hit.crop_url || hit.thumbnail_url) image.src = hit.crop_url || hit.thumbnail_url;
    card.append(image, text("strong", label(hit)), text("span", `score ${hit.score.toFixed(3)}`, "score"));
    const when = timeProvenance(hit);
    card.append(text("span", formatTime(hit.taken_at_utc), `time clock-${when}`), text("span", `clock ${when}`,
      `badge clock-${when}`));
    card.append(text("span", hit.place_name || (hit.lat == null ? "no position" : `${hit.lat.toFixed(5)}, `
      + `${hit.lon.toFixed(5)}`), "place"));
    if (group.count > 1) {
      card.append(text("span", `×${group.count} near-duplicates (${group.photos} photo${group.photos > 1 ? "s" : ""})`,
        "badge count"));
    }
    card.addEventListener("click", () => onOpen(group));
    item.appendChild(card);
    list.appendChild(item);
  }
}

function fact(list, term, value) {
  list.append(text("dt", term), text("dd", value));
}

/** Fill the detail dialog for `group`; the box is drawn once the thumbnail's size is known. */
export function renderDetail(dialog, group, { thumbnailMaxSide }) {
  const hit = group.best;
  dialog.querySelector("#detail-title").textContent = `${label(hit)} — score ${hit.score.toFixed(3)}`;
  const photo = dialog.querySelector("#detail-photo");
  const overlay = dialog.querySelector("#detail-box");
  const note = dialog.querySelector("#detail-box-note");
  overlay.replaceChildren();
  note.textContent = "";
  photo.onload = () => {
    const [w, h] = [photo.naturalWidth, photo.naturalHeight];
    overlay.setAttribute("viewBox", `0 0 ${w} ${h}`);
    let scale = null;
    if (hit.photo_width) scale = w / hit.photo_width;
    else if (Math.max(w, h) < thumbnailMaxSide) scale = 1; // thumbnails are never enlarged: this is full size
    if (!hit.box) note.textContent = "no detection box for this result";
    else if (scale === null) note.textContent = "box not drawn: the API does not give this photo's full size";
    else {
      const [x, y, bw, bh] = hit.box.map((v) => v * scale);
      el("rect", { class: "box", x, y, width: bw, height: bh, "data-box": "drawn" }, overlay);
    }
  };
  photo.removeAttribute("src");
  if (hit.thumbnail_url) photo.src = hit.thumbnail_url;
  else note.textContent = "no thumbnail for this photo";
  const facts = dialog.querySelector("#detail-facts");
  facts.replaceChildren();
  fact(facts, "Capture time", formatTime(hit.taken_at_utc));
  fact(facts, "Clock", timeProvenance(hit) + (hit.time_source ? ` (${hit.time_source})` : ""));
  fact(facts, "Position", hit.lat == null ? "none" : `${hit.lat.toFixed(6)}, ${hit.lon.toFixed(6)}`);
  fact(facts, "Position source", positionProvenance(hit));
  fact(facts, "Place", hit.place_name || "—");
  fact(facts, "Kind", hit.kind);
  for (const [key, value] of Object.entries(hit.attributes || {})) fact(facts, key, String(value));
  fact(facts, "Photo", hit.photo_id);
  fact(facts, "Detection", hit.detection_id);
  if (group.count > 1) fact(facts, "Near-duplicates", group.hits.map((h) => h.photo_id).join(", "));
  dialog.querySelector("#more-like").disabled = hit.kind === "plate"; // plates are matched as text, not vectors
}
