// §12 auth/login: the sign-in dialog, roles, password-auth switch, sessions across tabs.
import { control, expect, openAs, test } from "./support/fixtures";

test.describe("sign-in", () => {
  test("first visit shows the blocking sign-in dialog; wrong password keeps the form", async ({
    page,
    stack,
    consoleAllowed,
  }) => {
    consoleAllowed.push(/status of 400/); // the browser logs the rejected sign-in request
    await page.goto(`${stack.url}/dashboard/`);
    const dialog = page.getByRole("dialog", { name: "Sign in to QPI" });
    await expect(dialog).toBeVisible();
    await expect(page.getByRole("tab", { name: "Regular User" })).toHaveAttribute("aria-selected", "true");
    await expect(page.getByRole("navigation", { name: "Main" })).toHaveCount(0);
    await dialog.press("Escape"); // blocking: Escape does not close it
    await expect(dialog).toBeVisible();

    await page.getByLabel("Email").fill(stack.user.email);
    await page.getByLabel("Password").fill("not-the-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(dialog.getByRole("alert")).toHaveText("Invalid credentials");
    await expect(page.getByLabel("Email")).toHaveValue(stack.user.email);
  });

  test("a user signs in and out", async ({ page, stack }) => {
    await page.goto(`${stack.url}/dashboard/`);
    await page.getByLabel("Email").fill(stack.user.email);
    await page.getByLabel("Password").fill(stack.user.password);
    await page.getByLabel("Password").press("Enter");
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Overview");
    await expect(page.getByText("User Account")).toBeVisible();
    await page.getByRole("button", { name: stack.user.email }).click();
    await page.getByRole("menuitem", { name: "Sign Out" }).click();
    await expect(page.getByRole("dialog", { name: "Sign in to QPI" })).toBeVisible();
    expect(await page.evaluate(() => localStorage.getItem("qpi_auth"))).toBeNull();
  });

  test("an administrator signs in on the Administrator tab", async ({ page, stack, consoleAllowed }) => {
    consoleAllowed.push(/status of 400/);
    await page.goto(`${stack.url}/dashboard/`);
    await page.getByRole("tab", { name: "Administrator" }).click();
    await page.getByLabel("Email").fill(stack.user.email);
    await page.getByLabel("Password").fill(stack.user.password);
    await page.getByRole("button", { name: "Sign in as administrator" }).click();
    // A user account is no administrator.
    await expect(page.getByRole("dialog").getByRole("alert")).toHaveText("Invalid credentials");
    await page.getByLabel("Email").fill(stack.admin.email);
    await page.getByLabel("Password").fill(stack.admin.password);
    await page.getByRole("button", { name: "Sign in as administrator" }).click();
    const balance = page.getByRole("region", { name: "QPU balance" });
    await expect(balance.getByText("Administrator")).toBeVisible();
    await expect(page.getByRole("link", { name: "Drivers" })).toBeVisible();
  });

  test("switching role tabs keeps keyboard focus on the tabs", async ({ page, stack }) => {
    await page.goto(`${stack.url}/dashboard/`);
    const user = page.getByRole("tab", { name: "Regular User" });
    const admin = page.getByRole("tab", { name: "Administrator" });
    await user.focus();
    await page.keyboard.press("ArrowRight");
    await expect(admin).toBeFocused();
    await expect(admin).toHaveAttribute("aria-selected", "true");
    await page.keyboard.press("ArrowLeft");
    await expect(user).toBeFocused();
    await admin.click();
    await expect(admin).toBeFocused();
  });

  test("the password form follows auth-methods (hidden for users when disabled)", async ({ page, stack }) => {
    const { url } = await control<{ url: string }>(stack, "/servers", {
      args: ["--disable-email-password-auth"],
    });
    await page.goto(`${url}/dashboard/`);
    await expect(page.getByText("Password sign-in is disabled on this server.")).toBeVisible();
    await expect(page.getByLabel("Password")).toHaveCount(0);
    // Administrators can always use their password.
    await page.getByRole("tab", { name: "Administrator" }).click();
    await expect(page.getByLabel("Password")).toBeVisible();
    // On the main server password sign-in is enabled.
    await page.goto(`${stack.url}/dashboard/`);
    await expect(page.getByLabel("Password")).toBeVisible();
  });

  test("signing in and out in one tab does so in every tab", async ({ context, page, stack }) => {
    const second = await context.newPage();
    await page.goto(`${stack.url}/dashboard/`);
    await second.goto(`${stack.url}/dashboard/#jobs`);
    await expect(second.getByRole("dialog", { name: "Sign in to QPI" })).toBeVisible();
    await page.getByLabel("Email").fill(stack.user.email);
    await page.getByLabel("Password").fill(stack.user.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(second.getByRole("heading", { level: 1 })).toHaveText("Jobs Console");
    await expect(second.getByTestId("feed-status")).toHaveText("Live");
    await second.getByRole("button", { name: stack.user.email }).click();
    await second.getByRole("menuitem", { name: "Sign Out" }).click();
    await expect(page.getByRole("dialog", { name: "Sign in to QPI" })).toBeVisible();
  });

  test("a stored session survives a reload", async ({ page, stack, rest }) => {
    await openAs(page, stack, await rest.login(stack.user), "qpus");
    await page.reload();
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("QPU Registry");
  });
});

test("a dead stored session signs out instead of showing stale data", async ({ page, stack, consoleAllowed }) => {
  consoleAllowed.push(/status of 401/);
  await page.goto(`${stack.url}/dashboard/`);
  await page.evaluate(() =>
    localStorage.setItem(
      "qpi_auth",
      JSON.stringify({ token: "qpi_" + "0".repeat(64), record: { id: "x", email: "gone@example.com", qpu_seconds: 1 }, admin: false }),
    ),
  );
  await page.reload();
  await expect(page.getByRole("dialog", { name: "Sign in to QPI" })).toBeVisible();
  expect(await page.evaluate(() => localStorage.getItem("qpi_auth"))).toBeNull();
});

test("the live feed reconnects after a server restart and keeps pushing", async ({ page, stack, consoleAllowed }) => {
  test.setTimeout(240_000);
  consoleAllowed.push(/ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|Failed to load resource|EventSource/);
  // A server of its own: the restart must not disturb the shared empty one.
  const args = ["--idle-threshold", "4s"];
  const { url } = await control<{ url: string }>(stack, "/servers", { args });
  const { Rest } = await import("./support/fixtures");
  const rest = new Rest(url);
  const admin = await rest.login(stack.admin, true);
  await openAs(page, { ...stack, url }, admin, "qpus");
  await control(stack, "/servers/restart", { args });
  await expect(page.getByTestId("feed-status")).toHaveText("Live", { timeout: 120_000 });
  const again = await rest.login(stack.admin, true);
  const name = `after_restart_${Date.now().toString(36)}`;
  await rest.call("POST", "/api/op/qpus/create", again.token, { name });
  await expect(page.getByRole("listitem", { name: `QPU ${name}` })).toBeVisible();
});
