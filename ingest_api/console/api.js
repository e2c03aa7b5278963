// The console's only way to the server: same-origin JSON calls with the staff token from sessionStorage.
// A 401 (expired or revoked token) drops the token so the page returns to the sign-in form.

const TOKEN_KEY = "witness.staff.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function detail(body, status) {
  if (body && typeof body.message === "string") return [body.code || String(status), body.message];
  if (body && Array.isArray(body.detail)) {
    return ["invalid_request", body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ")];
  }
  if (body && typeof body.detail === "string") return [String(status), body.detail];
  return [String(status), `HTTP ${status}`];
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const current = token();
  if (current) headers.Authorization = `Bearer ${current}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const parsed = await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && path !== "/v1/auth/token") forget();
    const [code, message] = detail(parsed, response.status);
    throw new ApiError(response.status, code, message);
  }
  return parsed;
}

export async function login(username, password) {
  const issued = await call("POST", "/v1/auth/token", { username, password });
  sessionStorage.setItem(TOKEN_KEY, issued.access_token);
  return issued;
}

export async function logout() {
  try {
    await call("DELETE", "/v1/auth/token");
  } finally {
    forget();
  }
}
