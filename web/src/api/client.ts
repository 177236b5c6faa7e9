// The API client, generated from the server's OpenAPI document (src/api/schema.d.ts, by
// `npm run gen:api`). A middleware adds the access token and, when the server answers 401
// because it expired, refreshes it once and repeats the request.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { refresh, session } from "./session";

const pending = new Map<string, Request>();

const auth: Middleware = {
  onRequest({ request, id }) {
    const token = session()?.access_token;
    if (token) request.headers.set("authorization", `Bearer ${token}`);
    if (!new URL(request.url).pathname.startsWith("/api/v1/auth/")) {
      pending.set(id, request.clone());
    }
    return request;
  },
  async onResponse({ response, id }) {
    const original = pending.get(id);
    pending.delete(id);
    if (response.status !== 401 || !original) return response;
    const renewed = await refresh();
    if (!renewed) return response;
    original.headers.set("authorization", `Bearer ${renewed.access_token}`);
    return fetch(original);
  },
  onError({ id }) {
    pending.delete(id);
  },
};

export const api = createClient<paths>({
  baseUrl: window.location.origin,
  credentials: "same-origin",
  // Looked up per request (not captured once), so tests can stand a server in for fetch.
  fetch: (request) => fetch(request),
});
api.use(auth);

export type Task = components["schemas"]["Task"];
export type TaskEvent = components["schemas"]["TaskEvent"];

/** The `detail` of a problem response, or a generic line. */
export function problem(error: unknown): string {
  if (error && typeof error === "object" && "detail" in error) {
    return String((error as { detail: unknown }).detail);
  }
  return "the request failed";
}

/** Unwraps an openapi-fetch result: its data, or an Error carrying the problem's detail. */
export async function must<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || data === undefined) {
    if (response.ok && data === undefined) return undefined as T;
    throw new Error(problem(error) || `${response.status}`);
  }
  return data;
}
