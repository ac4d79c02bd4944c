// The typed client of the config API: paths, parameters and bodies come from schema.d.ts,
// generated from the checked-in OpenAPI document, so an API change that breaks the console
// fails `tsc --noEmit` in `make test`.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type S = components["schemas"];

const TOKEN_KEY = "vigil.console.token";

let token: string | null = readStoredToken();
const listeners = new Set<() => void>();

function readStoredToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** The API token the console signs in with: memory and this tab's sessionStorage only. */
export function currentToken(): string | null {
  return token;
}

export function setToken(value: string | null): void {
  token = value;
  try {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage refused (private mode): memory only */
  }
  listeners.forEach((l) => l());
}

export function onTokenChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

const auth: Middleware = {
  onRequest({ request }) {
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
  onResponse({ response }) {
    // An expired or revoked token signs the console out.
    if (response.status === 401 && token) setToken(null);
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

/** An RFC 7807 problem the API answered with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Partial<S["Problem"]>,
  ) {
    super(problem.detail || problem.title || `HTTP ${status}`);
  }
}

/** The data of an openapi-fetch result (none for a 204), or an ApiError. */
export function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok) return result.data as T;
  const problem = (result.error && typeof result.error === "object" ? result.error : {}) as Partial<S["Problem"]>;
  throw new ApiError(result.response.status, problem);
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
