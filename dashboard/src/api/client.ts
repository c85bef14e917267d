// The typed REST client: openapi-fetch over the generated `paths` (scripts/gen_dashboard_api.sh).
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

/** An error answered by the gateway (its envelope) or by the network. */
export class ApiError extends Error {
  readonly status: number;
  readonly data: Record<string, { code?: string; message?: string }>;

  constructor(status: number, message: string, data: ApiError["data"] = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.data = data;
  }

  /** The message with any per-field messages, for display. */
  get detail(): string {
    const fields = Object.entries(this.data)
      .map(([key, value]) => (value?.message ? `${key}: ${value.message}` : ""))
      .filter(Boolean);
    return fields.length ? `${this.message} (${fields.join("; ")})` : this.message;
  }
}

let currentToken: string | null = null;
let onUnauthorized: (() => void) | null = null;

/** Sets the credentials every request carries (null signs out). */
export function setApiToken(token: string | null): void {
  currentToken = token;
}

/** Called when the server rejects the stored session (expired or revoked). */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

const auth: Middleware = {
  onRequest({ request }) {
    if (currentToken) request.headers.set("Authorization", `Bearer ${currentToken}`);
    return request;
  },
  onResponse({ response, request }) {
    // A sign-in attempt with a wrong password is a 400, so any 401 means the session died.
    if (response.status === 401 && request.headers.has("Authorization")) onUnauthorized?.();
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: window.location.origin });
api.use(auth);

type Envelope = { message?: unknown; data?: unknown; status?: unknown };

/** Converts whatever a failed call returned into an ApiError. */
export function toApiError(error: unknown, response: Response | undefined): ApiError {
  const status = response?.status ?? 0;
  const body = (error ?? {}) as Envelope;
  const message =
    typeof body.message === "string" && body.message
      ? body.message
      : status
        ? `Request failed with status ${status}.`
        : "The server could not be reached.";
  const data =
    body.data && typeof body.data === "object" ? (body.data as ApiError["data"]) : {};
  return new ApiError(status, message, data);
}

/** Awaits an openapi-fetch call and returns its data, throwing ApiError on failure. */
export async function call<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await pending;
  } catch {
    throw new ApiError(0, "The server could not be reached.", {});
  }
  if (!result.response.ok) throw toApiError(result.error, result.response);
  return result.data as T;
}
