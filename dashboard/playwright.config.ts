import { defineConfig } from "@playwright/test";

// Browser tests against real `qpi serve` and `qpi-driver` processes (tests/support/global-setup.ts).
// Debian's chromium is used; Playwright's own browser downloads are never needed.
export default defineConfig({
  testDir: "tests",
  testMatch: /.*\.spec\.ts$/,
  globalSetup: "./tests/support/global-setup.ts",
  // One shared server: tests run one at a time so that global figures (online QPUs) are stable.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 90_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  outputDir: "test-results/artifacts",
  use: {
    browserName: "chromium",
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.QPI_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
    screenshot: "only-on-failure",
    trace: "off",
  },
});
