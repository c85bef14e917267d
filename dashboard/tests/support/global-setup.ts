// Starts the real QPI processes (tests/e2e/dashboard/stack.py) once for the whole run and
// stops them afterwards. The state file it writes tells the tests where everything is.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const dashboard = resolve(import.meta.dirname, "..", "..");
const repo = resolve(dashboard, "..");

async function waitFor(file: string, exited: () => string | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(file)) return;
    const reason = exited();
    if (reason) throw new Error(`the QPI test stack exited early (${reason})`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the QPI test stack was not ready within ${timeoutMs / 1000} s`);
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const dist = join(dashboard, "dist");
  if (!existsSync(join(dist, "index.html"))) {
    throw new Error("dashboard/dist is missing: run `npm run build` (or `make build`) first");
  }
  const python = process.env.QPI_PYTHON ?? join(repo, ".venv", "bin", "python");
  const root = mkdtempSync(join(tmpdir(), "qpi-dashboard-e2e-"));
  const state = join(root, "state.json");
  mkdirSync(join(dashboard, "test-results"), { recursive: true });
  const logFile = join(root, "stack.log");
  const { openSync } = await import("node:fs");
  const log = openSync(logFile, "a");
  const child = spawn(
    python,
    ["-m", "tests.e2e.dashboard.stack", "--state", state, "--root", root, "--dashboard-dir", dist],
    { cwd: repo, stdio: ["ignore", log, log] },
  );
  let exit: string | null = null;
  child.on("exit", (code, signal) => {
    exit = `code ${code}, signal ${signal}`;
  });
  try {
    await waitFor(state, () => (exit ? `${exit}; log: ${readFileSync(logFile, "utf8").slice(-3000)}` : null), 240_000);
  } catch (error) {
    child.kill("SIGTERM");
    throw error;
  }
  process.env.QPI_STACK_STATE = state;

  return async () => {
    if (exit === null) {
      const stopped = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 30_000))]);
      if (exit === null) child.kill("SIGKILL");
    }
    if (!process.env.QPI_KEEP_E2E_DATA) rmSync(root, { recursive: true, force: true });
  };
}
