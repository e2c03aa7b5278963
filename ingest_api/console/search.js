// Turning the search form into the API's request bodies, and saying back what will be audited.
// Times in the form are UTC (datetime-local inputs carry no zone; the labels say UTC).

export const ROUTES = {
  plate: "/v1/search/plates",
  faces: "/v1/search/faces",
  vehicles: "/v1/search/vehicles",
  attributes: "/v1/search/vehicles/attributes",
  similar: "/v1/search/similar",
};

export function fromUtcInput(value) {
  return `${value.length === 16 ? `${value}:00` : value}Z`;
}

/** `YYYY-MM-DDTHH:MM:SS` in UTC; an ISO string without a zone is taken as UTC (never as the browser's zone). */
export function toUtcInput(iso) {
  const text = String(iso);
  return new Date(/([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`).toISOString().slice(0, 19);
}

export function readFence(doc) {
  const number = (id) => Number(doc.getElementById(id).value);
  return {
    circle: { lat: number("fence-lat"), lon: number("fence-lon"), radius_m: number("fence-radius") },
    start: fromUtcInput(doc.getElementById("fence-start").value),
    end: fromUtcInput(doc.getElementById("fence-end").value),
    include_unplaced: doc.getElementById("include-unplaced").checked,
    include_untimed: doc.getElementById("include-untimed").checked,
  };
}

export function readBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** `[route, body]` for the kind chosen in the form; throws an Error naming what is missing. */
export async function readQuery(doc) {
  const kind = doc.getElementById("search-kind").value;
  const base = {
    fence: readFence(doc),
    case_id: doc.getElementById("case-id").value.trim(),
    legal_basis: doc.getElementById("legal-basis").value.trim(),
  };
  if (kind === "plate") {
    const plate = doc.getElementById("plate").value.trim();
    if (!plate) throw new Error("type a plate (wildcards * and ? allowed)");
    return [ROUTES.plate, { ...base, plate }];
  }
  if (kind === "attributes") {
    const description = doc.getElementById("description").value.trim();
    if (!description) throw new Error("describe the vehicle, e.g. 'black car'");
    return [ROUTES.attributes, { ...base, description }];
  }
  const file = doc.getElementById("query-image").files[0];
  if (!file) throw new Error("choose a photo or crop to search with");
  return [ROUTES[kind], { ...base, image_base64: await readBase64(file), k: 10 }];
}

export function auditLine(path, body, caseLabel = "") {
  const f = body.fence;
  const what = body.plate ? `plate “${body.plate}”` : body.description ? `vehicles “${body.description}”`
    : body.detection_id ? `more like ${body.detection_id}` : `${path.split("/").pop()} by uploaded image`;
  const area = f.circle ? `circle ${f.circle.lat.toFixed(5)}, ${f.circle.lon.toFixed(5)}, radius ${f.circle.radius_m} m`
    : "polygon";
  return `Audited search — case ${caseLabel ? `${caseLabel} (${body.case_id})` : body.case_id} — legal basis: ${body.legal_basis} — ${what} — fence: ${area}, `
    + `${f.start} → ${f.end}; photos without trusted position ${f.include_unplaced ? "included" : "excluded"}, `
    + `without trusted time ${f.include_untimed ? "included" : "excluded"}`;
}
