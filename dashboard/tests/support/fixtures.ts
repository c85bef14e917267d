// Shared fixtures: the running stack, a REST helper, sign-in shortcuts and a guard that
// fails any test whose pages log console errors (unless the test expects a specific one).
import { expect, test as base, type BrowserContext, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";

export interface Account {
  email: string;
  password: string;
}

export interface StackState {
  url: string;
  control: string;
  caFingerprint: string;
  admin: Account;
  user: Account;
  other: Account;
  password: string;
  userSeconds: number;
  qpu: string;
  logs: string;
}

export interface Session {
  token: string;
  record: { id: string; email: string; qpu_seconds: number; is_superuser?: boolean };
  admin: boolean;
}

function readState(): StackState {
  const file = process.env.QPI_STACK_STATE;
  if (!file) throw new Error("QPI_STACK_STATE is not set: run the tests through playwright.config.ts");
  return JSON.parse(readFileSync(file, "utf8")) as StackState;
}

/** Plain REST calls against a QPI server (throws with the envelope on failure). */
export class Rest {
  constructor(readonly url: string) {}

  async call<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} -> ${response.status}: ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }

  async login(account: Account, admin = false): Promise<Session> {
    const collection = admin ? "_superusers" : "users";
    const data = await this.call<{ token: string; record: Session["record"] }>(
      "POST",
      `/api/collections/${collection}/auth-with-password`,
      null,
      { identity: account.email, password: account.password },
    );
    return { token: data.token, record: data.record, admin };
  }
}

let counter = 0;
/** A unique, readable name for records a test creates. */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter}`;
}

export const BELL = 'OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; creg c[2]; h q[0]; cx q[0],q[1]; measure q -> c;';

interface Fixtures {
  stack: StackState;
  rest: Rest;
  adminSession: Session;
  /** Patterns of console errors this test provokes on purpose (push onto it). */
  consoleAllowed: RegExp[];
  consoleGuard: void;
}

export const test = base.extend<Fixtures>({
  stack: async ({}, use) => {
    await use(readState());
  },
  rest: async ({ stack }, use) => {
    await use(new Rest(stack.url));
  },
  adminSession: async ({ rest, stack }, use) => {
    await use(await rest.login(stack.admin, true));
  },
  consoleAllowed: async ({}, use) => {
    await use([]);
  },
  consoleGuard: [
    async ({ context, consoleAllowed: allowed }, use) => {
      const errors: string[] = [];
      watch(context, errors);
      await use();
      const unexpected = errors.filter((e) => !allowed.some((p) => p.test(e)));
      expect(unexpected, "console errors in the dashboard").toEqual([]);
    },
    { auto: true },
  ],
});

/** Whether a page is one of the dashboard's (not, say, an OAuth2 provider's login page). */
const onDashboard = (page: Page | null) => Boolean(page?.url().includes("/dashboard/"));

function watch(context: BrowserContext, errors: string[]): void {
  context.on("console", (message) => {
    if (message.type() === "error" && onDashboard(message.page())) {
      errors.push(`${message.text()} @ ${message.location().url}`);
    }
  });
  context.on("weberror", (error) => {
    if (onDashboard(error.page())) errors.push(`uncaught: ${error.error().message}`);
  });
}

/** Opens the dashboard signed in as `session` (as a stored session, skipping the form). */
export async function openAs(page: Page, stack: StackState, session: Session, hash = "overview"): Promise<void> {
  await page.goto(`${stack.url}/dashboard/`);
  await page.evaluate(
    ([value, target]) => {
      localStorage.setItem("qpi_auth", JSON.stringify(value));
      history.replaceState(null, "", `#${target}`);
    },
    [session, hash] as const,
  );
  await page.reload();
  await expect(page.getByTestId("feed-status")).toHaveText("Live");
}

/** Creates a user with `seconds` of balance and signs them in over REST. */
export async function newUser(rest: Rest, admin: Session, prefix = "u", seconds = 1000): Promise<Session> {
  const email = `${unique(prefix)}@example.com`;
  const password = "dashboard-test-password-1";
  await rest.call("POST", "/api/collections/users/records", admin.token, {
    email,
    password,
    passwordConfirm: password,
    qpu_seconds: seconds,
  });
  return rest.login({ email, password });
}

/** Control API of the stack: start and stop real driver daemons and extra servers. */
export async function control<T>(stack: StackState, path: string, body: unknown = {}): Promise<T> {
  const response = await fetch(`${stack.control}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = (await response.json()) as T & { message?: string };
  if (!response.ok) throw new Error(`control ${path}: ${data.message}`);
  return data;
}

export { expect };
