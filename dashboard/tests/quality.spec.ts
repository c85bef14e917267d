// Quality: accessibility (axe-core), keyboard use, desktop and phone layouts, first-load
// JavaScript size, and a screenshot of every page in light and dark mode for review.
import AxeBuilder from "@axe-core/playwright";
import { gzipSync } from "node:zlib";
import type { Page } from "@playwright/test";
import { BELL, expect, newUser, openAs, test } from "./support/fixtures";

const PAGES = ["overview", "qpus", "drivers", "monitoring", "jobs", "bookings", "settings", "admin"];
const SHOTS = "test-results/screenshots";

async function seriousViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

async function setMode(page: Page, mode: "dark" | "light"): Promise<void> {
  const current = await page.locator("html").getAttribute("data-theme");
  if (current !== mode) await page.getByRole("button", { name: `Switch to ${mode} mode` }).click();
  await expect(page.locator("html")).toHaveAttribute("data-theme", mode);
}

async function show(page: Page, hash: string): Promise<void> {
  await page.evaluate((h) => (window.location.hash = h), hash);
  await expect(page.locator("main#main")).not.toContainText("Loading…");
  if (hash === "jobs") await expect(page.getByTestId("qasm-editor")).toBeVisible();
}

test("every page has no serious accessibility violations, in both modes, with a screenshot", async ({
  page,
  stack,
  rest,
  adminSession,
}) => {
  test.setTimeout(180_000);
  // Some content on every page: a finished job with a histogram and an open dialog.
  const job = await rest.call<{ id: string }>("POST", "/api/jobs", adminSession.token, {
    circuits: [{ circuit: BELL }],
    shots: 500,
    qpu_target: stack.qpu,
  });
  await openAs(page, stack, adminSession);
  const problems: string[] = [];
  for (const mode of ["dark", "light"] as const) {
    await setMode(page, mode);
    for (const name of PAGES) {
      await show(page, name === "jobs" ? `jobs/${job.id}` : name);
      if (name === "jobs") await expect(page.getByTestId("histogram")).toBeVisible();
      problems.push(...(await seriousViolations(page)).map((v) => `${mode} #${name}: ${v}`));
      await page.screenshot({ path: `${SHOTS}/${name}-${mode}.png`, fullPage: true });
    }
    await show(page, "qpus");
    await page.getByRole("button", { name: "Register QPU" }).click();
    problems.push(...(await seriousViolations(page)).map((v) => `${mode} register dialog: ${v}`));
    await page.screenshot({ path: `${SHOTS}/register-qpu-${mode}.png` });
    await page.keyboard.press("Escape");
    await page.getByRole("button", { name: /^Notifications/ }).click();
    problems.push(...(await seriousViolations(page)).map((v) => `${mode} bell: ${v}`));
    await page.keyboard.press("Escape");
  }
  expect(problems).toEqual([]);
});

test("the sign-in dialog and a user's pages are accessible", async ({ page, stack, rest, adminSession }) => {
  await page.goto(`${stack.url}/dashboard/`);
  await expect(page.getByRole("dialog", { name: "Sign in to QPI" })).toBeVisible();
  expect(await seriousViolations(page)).toEqual([]);
  await page.screenshot({ path: `${SHOTS}/login-dark.png` });
  const user = await newUser(rest, adminSession, "a11y");
  await openAs(page, stack, user);
  const problems: string[] = [];
  for (const name of ["overview", "qpus", "jobs", "bookings", "settings", "admin"]) {
    await show(page, name);
    problems.push(...(await seriousViolations(page)).map((v) => `#${name}: ${v}`));
  }
  await page.getByRole("button", { name: "Request Time" }).click();
  problems.push(...(await seriousViolations(page)).map((v) => `request time: ${v}`));
  expect(problems).toEqual([]);
});

test("keyboard only: sign in, navigate, submit a job", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "keyboard");
  await page.goto(`${stack.url}/dashboard/`);
  await expect(page.getByLabel("Email")).toBeVisible();
  // Focus starts inside the modal dialog; Tab moves through its controls.
  await page.getByRole("tab", { name: "Regular User" }).focus();
  await page.keyboard.press("Tab");
  await expect(page.getByLabel("Email")).toBeFocused();
  await page.keyboard.type(user.record.email);
  await page.keyboard.press("Tab");
  await page.keyboard.type("dashboard-test-password-1");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Overview");
  await expect(page.getByTestId("feed-status")).toHaveText("Live");

  const jobsLink = page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /Jobs Console/ });
  await jobsLink.focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Jobs Console");
  const execute = page.getByRole("button", { name: "Execute Job" });
  await page.getByLabel("Shots").focus();
  for (let i = 0; i < 5 && !(await execute.evaluate((b) => b === document.activeElement)); i += 1) {
    await page.keyboard.press("Tab");
  }
  await expect(execute).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("job-details")).toHaveAttribute("data-status", "completed");
  // Escape leaves the editor's Tab handling, so keyboard users are never trapped in it.
  await page.getByTestId("qasm-editor").focus();
  await page.keyboard.press("Escape");
  await page.keyboard.press("Tab");
  await expect(page.getByTestId("qasm-editor")).not.toBeFocused();
});

for (const viewport of [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
]) {
  test(`usable at ${viewport.name} size (${viewport.width}×${viewport.height})`, async ({
    page,
    stack,
    rest,
    adminSession,
  }) => {
    // Wide content on the way: a booking row (bookings are global, so pick a free far slot).
    const start = Date.now() + (30 + Math.floor(Math.random() * 300)) * 86_400_000;
    await rest.call("POST", "/api/collections/time_slots/records", adminSession.token, {
      start_time: new Date(start).toISOString(),
      end_time: new Date(start + 3600_000).toISOString(),
    });
    await page.setViewportSize(viewport);
    await openAs(page, stack, adminSession);
    const nav = page.getByRole("navigation", { name: "Main" });
    for (const name of PAGES) {
      await show(page, name);
      // Nothing may force sideways scrolling of the page itself.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `#${name} overflows by ${overflow}px`).toBeLessThanOrEqual(0);
      await page.screenshot({ path: `${SHOTS}/${name}-${viewport.name}.png` });
    }
    if (viewport.name === "phone") {
      await expect(nav).toBeHidden();
      await page.getByRole("button", { name: "Menu" }).click();
      await expect(nav).toBeVisible();
      await nav.getByRole("link", { name: /QPU Registry/ }).click();
      await expect(nav).toBeHidden();
      await expect(page.getByRole("heading", { level: 1 })).toHaveText("QPU Registry");
    } else {
      await expect(nav).toBeVisible();
      await expect(page.getByRole("button", { name: "Menu" })).toBeHidden();
    }
  });
}

test("the first load downloads less than 300 KB of gzipped JavaScript", async ({ page, stack, rest }) => {
  const sizes = new Map<string, number>();
  page.on("response", async (response) => {
    if (response.request().resourceType() === "script") {
      sizes.set(response.url(), gzipSync(await response.body(), { level: 9 }).length);
    }
  });
  await openAs(page, stack, await rest.login(stack.user));
  await page.waitForLoadState("networkidle");
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  console.log(`first load: ${(total / 1024).toFixed(1)} KB gzipped JS in ${sizes.size} file(s)`);
  expect(sizes.size).toBeGreaterThan(0);
  expect(total).toBeLessThan(300 * 1024);
});
