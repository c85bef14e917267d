// §12 auth/role-based-nav and routing: what each role sees, hash routes, back/forward.
import { expect, openAs, test } from "./support/fixtures";

const USER_NAV = ["Overview", "QPU Registry", "Jobs Console", "Bookings", "Profile Settings"];
const ADMIN_NAV = [
  "Overview",
  "QPU Registry",
  "Drivers",
  "Monitoring",
  "Jobs Console",
  "Bookings",
  "Profile Settings",
  "Admin Panel",
];

/** Link texts (each link also holds a decorative icon). */
const named = (names: string[]) => names.map((n) => new RegExp(`${n}$`));

test("a user sees the standard pages, a balance and Request Time", async ({ page, stack, rest }) => {
  await openAs(page, stack, await rest.login(stack.user));
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link")).toHaveText(named(USER_NAV));
  const balance = page.getByRole("region", { name: "QPU balance" });
  await expect(balance.getByText("User Account")).toBeVisible();
  await expect(balance.getByTestId("balance")).toHaveText(/^[\d,]+\.\ds$/);
  await expect(balance.getByText(/^Server v/)).toHaveCount(0);
  await balance.getByRole("button", { name: "Request Time" }).click();
  const dialog = page.getByRole("dialog", { name: "Request QPU Time" });
  await expect(dialog.getByLabel("Seconds")).toHaveValue("100");
  await dialog.getByLabel("Reason").fill("Calibration run for the e2e suite");
  await dialog.getByRole("button", { name: "Submit Time Request" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("status").getByText("Time request submitted.")).toBeVisible();
});

test("an administrator sees every page, the role, the server version, no Request Time", async ({
  page,
  stack,
  adminSession,
}) => {
  await openAs(page, stack, adminSession);
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link")).toHaveText(named(ADMIN_NAV));
  const balance = page.getByRole("region", { name: "QPU balance" });
  await expect(balance.getByText("Administrator")).toBeVisible();
  await expect(balance.getByText(/^Server v\d/)).toBeVisible();
  await expect(balance.getByRole("button", { name: "Request Time" })).toHaveCount(0);
});

test("admin-only pages answer Access Denied to users", async ({ page, stack, rest }) => {
  await openAs(page, stack, await rest.login(stack.user), "drivers");
  await expect(page.getByRole("alert").filter({ hasText: "Access Denied." })).toBeVisible();
  for (const hash of ["monitoring", "admin"]) {
    await page.evaluate((h) => (window.location.hash = h), hash);
    await expect(page.getByText("Access Denied.")).toBeVisible();
  }
  await expect(page.getByRole("link", { name: "Drivers" })).toHaveCount(0);
});

test("hash routes, titles, unknown hashes and back/forward", async ({ page, stack, adminSession }) => {
  await openAs(page, stack, adminSession, "");
  const title = page.getByRole("heading", { level: 1 });
  await expect(title).toHaveText("Overview");
  const pages: [string, string][] = [
    ["jobs", "Jobs Console"],
    ["bookings", "Bookings"],
    ["qpus", "QPU Registry"],
    ["settings", "Profile Settings"],
    ["admin", "Admin Panel"],
    ["drivers", "Drivers"],
    ["monitoring", "Monitoring"],
  ];
  for (const [hash, text] of pages) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: text }).click();
    await expect(page).toHaveURL(new RegExp(`#${hash}$`));
    await expect(title).toHaveText(text);
    await expect(page).toHaveTitle(`${text} · QPI Dashboard`);
  }
  await page.goBack();
  await expect(title).toHaveText("Drivers");
  await page.goBack();
  await expect(title).toHaveText("Admin Panel");
  await page.goForward();
  await expect(title).toHaveText("Drivers");

  await page.evaluate(() => (window.location.hash = "#no-such-page"));
  await expect(title).toHaveText("Overview");
  await expect(page).toHaveURL(/#overview$/);

  // Deep links load the page directly.
  await page.goto(`${stack.url}/dashboard/#qpus`);
  await expect(title).toHaveText("QPU Registry");
});

test("the site root redirects to the dashboard", async ({ page, stack }) => {
  await page.goto(`${stack.url}/`);
  await expect(page).toHaveURL(`${stack.url}/dashboard/`);
  await expect(page.getByRole("dialog", { name: "Sign in to QPI" })).toBeVisible();
});
