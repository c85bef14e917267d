// §12 driver-registry: register (token and snippets once), custom kinds, live status of a
// real driver, enable switch, delete with confirmation; users cannot reach the page.
import { control, expect, openAs, test, unique } from "./support/fixtures";

test("an administrator registers a driver that shows offline until it connects", async ({
  page,
  stack,
  rest,
  adminSession,
}) => {
  const qpu = unique("drv_qpu");
  await rest.call("POST", "/api/collections/qpus/records", adminSession.token, { name: qpu });
  await openAs(page, stack, adminSession, "drivers");
  const name = unique("fridge_driver");
  await page.getByRole("button", { name: "Register Driver" }).click();
  const dialog = page.getByRole("dialog", { name: "Register Driver" });
  await dialog.getByLabel("Name").fill(name);
  await dialog.getByLabel("QPU").selectOption({ label: qpu });
  await expect(dialog.getByLabel("Kind")).toHaveValue("mock");
  await dialog.getByRole("button", { name: "Register" }).click();

  const done = page.getByRole("dialog", { name: `Driver ${name} registered` });
  const token = (await done.getByLabel("Access token", { exact: true }).textContent()) ?? "";
  expect(token).toMatch(/^qpi_[0-9a-f]{64}$/);
  await expect(done.getByLabel("CA fingerprint (SHA-256)", { exact: true })).toHaveText(stack.caFingerprint);
  await expect(done.getByLabel("Install and start (command line)", { exact: true })).toContainText(token);
  await expect(done.getByLabel("Install as a systemd service", { exact: true })).toBeVisible();
  await done.getByRole("button", { name: "Done" }).click();

  const card = page.getByRole("listitem", { name: `Driver ${name}` });
  await expect(card.locator(".badge")).toHaveText("offline");
  await expect(card).toContainText(qpu);
  await expect(card).toContainText("mock · python");
  await expect(card).toContainText("never");

  // The real daemon reports its own name in Hello, so the card is found by the new name.
  const runtimeName = `${name}_run`;
  await control(stack, "/drivers", { token, name: runtimeName });
  const running = page.getByRole("listitem", { name: `Driver ${runtimeName}` });
  await expect(running.locator(".badge")).toHaveText("online", { timeout: 60_000 });
  await expect(running).toContainText(/\d+ s ago/);

  // Disabling disconnects the driver; enabling lets it back in (it reconnects by itself).
  const toggle = running.getByRole("switch");
  await toggle.click();
  await expect(toggle).toHaveText("Disabled");
  await expect(running.locator(".badge")).toHaveText("offline");
  await toggle.click();
  await expect(toggle).toHaveText("Enabled");
  await expect(running.locator(".badge")).toHaveText("online", { timeout: 60_000 });
  await control(stack, `/drivers/${runtimeName}/kill`);
  await expect(running.locator(".badge")).toHaveText("offline");

  await running.getByRole("button", { name: `Delete ${runtimeName}` }).click();
  const confirm = page.getByRole("dialog", { name: "Delete driver" });
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await expect(running).toBeVisible();
  await running.getByRole("button", { name: `Delete ${runtimeName}` }).click();
  await confirm.getByRole("button", { name: "Delete" }).click();
  await expect(running).toHaveCount(0);
});

test("custom drivers need at least one event and get install and stub snippets", async ({
  page,
  stack,
  adminSession,
}) => {
  await openAs(page, stack, adminSession, "drivers");
  await page.getByRole("button", { name: "Register Driver" }).click();
  const dialog = page.getByRole("dialog", { name: "Register Driver" });
  const name = unique("byo_driver");
  await dialog.getByLabel("Name").fill(name);
  await dialog.getByLabel("QPU").selectOption({ label: stack.qpu });
  await dialog.getByLabel("Kind").selectOption("custom");
  await dialog.getByRole("button", { name: "Register" }).click();
  await expect(dialog.getByRole("alert")).toHaveText("Choose at least one event type for a custom driver.");
  await dialog.getByRole("checkbox", { name: "JobResult" }).check();
  await dialog.getByRole("button", { name: "Register" }).click();
  const done = page.getByRole("dialog", { name: `Driver ${name} registered` });
  await expect(done.getByLabel("Install and start", { exact: true })).toContainText("pip install");
  await expect(done.getByLabel("Executor stub (my_module.py)", { exact: true })).toContainText("class MyExecutor");
  await expect(done.getByLabel("Install as a systemd service", { exact: true })).toHaveCount(0);
});

test("users have no Drivers page", async ({ page, stack, rest }) => {
  await openAs(page, stack, await rest.login(stack.user), "drivers");
  await expect(page.getByText("Access Denied.")).toBeVisible();
  await expect(page.getByRole("button", { name: "Register Driver" })).toHaveCount(0);
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: /Drivers/ })).toHaveCount(0);
});
