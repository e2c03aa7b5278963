// The map without a tile server: an equirectangular projection of the fence's bounding box onto an SVG plane
// (true to scale in metres at the fence's latitude), with a graticule and a scale bar. A connected deployment may
// configure a `{z}/{x}/{y}` tile URL; tiles are then placed under the points by projecting their corners.

const SVG_NS = "http://www.w3.org/2000/svg";
const METRES_PER_DEGREE = (6371008.8 * Math.PI) / 180;
const WIDTH = 800;
const HEIGHT = 480;
const MAX_TILES = 64;

export function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) || 10 * power;
}

/** A plane for the bounding box of `fence` (lat, lon, radius_m) grown to hold `points` within `reach` radii. */
export function projection(fence, points = [], reach = 4) {
  const cos = Math.max(Math.cos((fence.lat * Math.PI) / 180), 1e-6);
  const dLat = fence.radius_m / METRES_PER_DEGREE;
  const dLon = dLat / cos;
  let [south, north, west, east] = [fence.lat - dLat, fence.lat + dLat, fence.lon - dLon, fence.lon + dLon];
  for (const p of points) {
    if (p.lat == null || p.lon == null) continue;
    if (Math.abs(p.lat - fence.lat) > reach * dLat || Math.abs(p.lon - fence.lon) > reach * dLon) continue;
    [south, north] = [Math.min(south, p.lat), Math.max(north, p.lat)];
    [west, east] = [Math.min(west, p.lon), Math.max(east, p.lon)];
  }
  const latC = (south + north) / 2;
  const lonC = (west + east) / 2;
  const widthM = (east - west) * cos * METRES_PER_DEGREE * 1.25;
  const heightM = (north - south) * METRES_PER_DEGREE * 1.25;
  const k = Math.min(WIDTH / widthM, HEIGHT / heightM); // pixels per metre
  return {
    k,
    cos,
    toXY(lat, lon) {
      return [WIDTH / 2 + (lon - lonC) * cos * METRES_PER_DEGREE * k, HEIGHT / 2 - (lat - latC) * METRES_PER_DEGREE * k];
    },
    toLatLon(x, y) {
      return [latC - (y - HEIGHT / 2) / (METRES_PER_DEGREE * k), lonC + (x - WIDTH / 2) / (METRES_PER_DEGREE * k * cos)];
    },
    inView(lat, lon) {
      const [x, y] = this.toXY(lat, lon);
      return x >= 0 && x <= WIDTH && y >= 0 && y <= HEIGHT;
    },
  };
}

function graticule(svg, plane) {
  const group = el("g", { class: "graticule" }, svg);
  const [north, west] = plane.toLatLon(0, 0);
  const [south, east] = plane.toLatLon(WIDTH, HEIGHT);
  const step = niceStep((north - south) / 5);
  for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
    const y = plane.toXY(lat, west)[1];
    el("line", { x1: 0, x2: WIDTH, y1: y, y2: y }, group);
    el("text", { x: 4, y: y - 3 }, group).textContent = lat.toFixed(4);
  }
  const lonStep = niceStep((east - west) / 6);
  for (let lon = Math.ceil(west / lonStep) * lonStep; lon <= east; lon += lonStep) {
    const x = plane.toXY(north, lon)[0];
    el("line", { x1: x, x2: x, y1: 0, y2: HEIGHT }, group);
    el("text", { x: x + 3, y: HEIGHT - 4 }, group).textContent = lon.toFixed(4);
  }
  const metres = niceStep(WIDTH / 5 / plane.k);
  const bar = el("g", { class: "scale-bar", transform: `translate(${WIDTH - 20 - metres * plane.k}, 24)` }, svg);
  el("rect", { x: 0, y: 0, width: metres * plane.k, height: 5 }, bar);
  el("text", { x: 0, y: -4 }, bar).textContent = metres >= 1000 ? `${metres / 1000} km` : `${metres} m`;
}

function lon2tile(lon, z) {
  return ((lon + 180) / 360) * 2 ** z;
}

function lat2tile(lat, z) {
  const rad = (lat * Math.PI) / 180;
  return ((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * 2 ** z;
}

function tile2lat(y, z) {
  const n = Math.PI - (2 * Math.PI * y) / 2 ** z;
  return (180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)));
}

function tiles(svg, plane, template) {
  const group = el("g", { class: "tiles" }, svg);
  const [north, west] = plane.toLatLon(0, 0);
  const [south, east] = plane.toLatLon(WIDTH, HEIGHT);
  const z = Math.max(0, Math.min(19, Math.round(Math.log2(156543.03 * plane.cos * plane.k))));
  const [x0, x1] = [Math.floor(lon2tile(west, z)), Math.floor(lon2tile(east, z))];
  const [y0, y1] = [Math.floor(lat2tile(north, z)), Math.floor(lat2tile(south, z))];
  if ((x1 - x0 + 1) * (y1 - y0 + 1) > MAX_TILES) return;
  for (let x = x0; x <= x1; x += 1) {
    for (let y = y0; y <= y1; y += 1) {
      const [left, top] = plane.toXY(tile2lat(y, z), (x / 2 ** z) * 360 - 180);
      const [right, bottom] = plane.toXY(tile2lat(y + 1, z), ((x + 1) / 2 ** z) * 360 - 180);
      const href = template.replace("{z}", z).replace("{x}", x).replace("{y}", y);
      el("image", { href, x: left, y: top, width: right - left, height: bottom - top, preserveAspectRatio: "none" },
        group);
    }
  }
}

/** A map bound to `svg`; `onMove(lat, lon)` is called when the fence centre is dragged and dropped. */
export function createMap(svg, { onMove, onPick }) {
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  let plane = null;
  let dragging = null;

  function pointer(event) {
    const matrix = svg.getScreenCTM();
    if (!matrix) return [0, 0];
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    return [point.x, point.y];
  }

  function render({ fence, results = [], events = [], tileUrl = "" }) {
    svg.replaceChildren();
    el("rect", { class: "ground", x: 0, y: 0, width: WIDTH, height: HEIGHT }, svg);
    plane = projection(fence, [...results, ...events]);
    if (tileUrl) tiles(svg, plane, tileUrl);
    graticule(svg, plane);
    for (const event of events) {
      if (!plane.inView(event.lat, event.lon)) continue;
      const [x, y] = plane.toXY(event.lat, event.lon);
      el("circle", { class: "event-area", cx: x, cy: y, r: event.radius_m * plane.k }, svg);
      const mark = el("rect", { class: "event", x: x - 6, y: y - 6, width: 12, height: 12 }, svg);
      el("title", {}, mark).textContent = `event: ${event.name}`;
    }
    const [cx, cy] = plane.toXY(fence.lat, fence.lon);
    const ring = el("circle", { class: "fence", cx, cy, r: fence.radius_m * plane.k }, svg);
    let off = 0;
    for (const result of results) {
      if (result.lat == null || result.lon == null || !plane.inView(result.lat, result.lon)) {
        off += 1;
        continue;
      }
      const [x, y] = plane.toXY(result.lat, result.lon);
      const dot = el("circle", { class: `result ${result.trusted ? "trusted" : "untrusted"}`, cx: x, cy: y, r: 7,
        "data-group": result.key, tabindex: 0 }, svg);
      el("title", {}, dot).textContent = result.label;
      dot.addEventListener("click", () => onPick(result.key));
    }
    const handle = el("circle", { class: "fence-centre", cx, cy, r: 9, tabindex: 0 }, svg);
    el("title", {}, handle).textContent = "fence centre: drag to move";
    handle.addEventListener("pointerdown", (event) => {
      dragging = { ring, handle };
      handle.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    handle.addEventListener("pointermove", (event) => {
      if (!dragging) return;
      const [x, y] = pointer(event);
      for (const node of [ring, handle]) {
        node.setAttribute("cx", x);
        node.setAttribute("cy", y);
      }
    });
    handle.addEventListener("pointerup", (event) => {
      if (!dragging) return;
      dragging = null;
      const [lat, lon] = plane.toLatLon(...pointer(event));
      onMove(Number(lat.toFixed(6)), Number(lon.toFixed(6)));
    });
    return { offMap: off };
  }

  return { render };
}
