// The signed-in session: token and user record, kept in localStorage so that every tab of
// the dashboard shares it (signing in or out in one tab does so in all of them).
import { api, ApiError, call, setApiToken, setUnauthorizedHandler } from "../api/client";
import { viewUser } from "../api/collections";
import type { AuthMethods, UserRecord } from "../api/types";
import { createStore, useStore } from "./store";

export interface Session {
  token: string;
  record: UserRecord;
  admin: boolean;
}

export const USERS = "users";
export const SUPERUSERS = "_superusers";
const KEY = "qpi_auth";

function load(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    if (!raw) return null;
    const value = JSON.parse(raw) as Partial<Session>;
    if (typeof value.token !== "string" || !value.record || typeof value.admin !== "boolean") {
      return null;
    }
    return value as Session;
  } catch {
    return null;
  }
}

export const session = createStore<Session | null>(load());
setApiToken(session.get()?.token ?? null);
session.subscribe(() => setApiToken(session.get()?.token ?? null));

function save(value: Session | null): void {
  try {
    if (value) localStorage.setItem(KEY, JSON.stringify(value));
    else localStorage.removeItem(KEY);
  } catch {
    // Storage unavailable: the session lives in this tab only.
  }
  session.set(value);
}

window.addEventListener("storage", (event) => {
  if (event.key === KEY || event.key === null) session.set(load());
});
setUnauthorizedHandler(() => save(null));

export function useSession(): Session | null {
  return useStore(session);
}

function asRecord(value: unknown): UserRecord {
  return value as UserRecord;
}

/** Signs in with e-mail and password; wrong credentials throw "Invalid credentials". */
export async function signInWithPassword(
  admin: boolean,
  email: string,
  password: string,
): Promise<void> {
  try {
    const body = { identity: email, password };
    const data = await call(
      admin
        ? api.POST("/api/collections/_superusers/auth-with-password", { body })
        : api.POST("/api/collections/users/auth-with-password", { body }),
    );
    const record = asRecord(data.record);
    // The role is the account's, whichever tab was used.
    save({ token: data.token, record, admin: admin || Boolean(record.is_superuser) });
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) {
      throw new ApiError(400, "Invalid credentials");
    }
    throw error;
  }
}

/** Finishes an OAuth2 sign-in: trades the one-time code the server's redirect carried. */
export async function signInWithOAuth2Code(code: string): Promise<void> {
  const data = await call(api.POST("/api/oauth2/exchange", { body: { code } }));
  const record = asRecord(data.record);
  save({ token: data.token, record, admin: Boolean(record.is_superuser) });
}

export function signOut(): void {
  save(null);
}

/** Seconds until a session token (a JWT) expires; Infinity when it carries no expiry. */
export function secondsLeft(token: string, now: number = Date.now()): number {
  try {
    const part = token.split(".")[1] ?? "";
    const payload = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: number };
    return typeof payload.exp === "number" ? payload.exp - now / 1000 : Infinity;
  } catch {
    return Infinity;
  }
}

/** Renews a stored session that has less than a day left (a dead one signs out on 401). */
export async function refreshSessionIfOld(): Promise<void> {
  const current = session.get();
  if (!current || secondsLeft(current.token) > 86_400) return;
  const data = await call(
    current.admin
      ? api.POST("/api/collections/_superusers/auth-refresh", {})
      : api.POST("/api/collections/users/auth-refresh", {}),
  );
  if (session.get()?.token === current.token) {
    save({ ...current, token: data.token, record: asRecord(data.record) });
  }
}

/** Re-reads the signed-in user's record (balance) without issuing a new token. */
export async function reloadRecord(): Promise<void> {
  const current = session.get();
  if (!current || current.admin) return;
  const record = await viewUser(current.record.id);
  const latest = session.get();
  if (latest?.token === current.token) save({ ...latest, record: { ...latest.record, ...record } });
}

/** One authenticated call: a dead session (401) signs out through the unauthorized handler. */
export async function checkSession(): Promise<void> {
  const current = session.get();
  if (!current) return;
  if (current.admin) await call(api.GET("/api/op/version", {}));
  else await reloadRecord();
}

export async function authMethods(admin: boolean): Promise<AuthMethods> {
  return call(
    admin
      ? api.GET("/api/collections/_superusers/auth-methods", {})
      : api.GET("/api/collections/users/auth-methods", {}),
  );
}
