// §12 qpu-registry: register (token shown once), live status from a real driver, enable
// switch, delete with confirmation, the user's read-only view; a stopped driver shows offline.
import { control, expect, openAs, test, unique } from "./support/fixtures";

test("an administrator registers a QPU, runs its driver and manages it", async ({ page, stack, adminSession }) => {
  await openAs(page, stack, adminSession, "qpus");
  const name = unique("lab_qpu");
  await page.getByRole("button", { name: "Register QPU" }).click();
  const dialog = page.getByRole("dialog", { name: "Register QPU" });
  await dialog.getByLabel("Name").fill(name);
  await dialog.getByRole("button", { name: "Register" }).click();

  const done = page.getByRole("dialog", { name: `QPU ${name} registered` });
  await expect(done.getByText("it is shown only once")).toBeVisible();
  const token = (await done.getByLabel("Access token", { exact: true }).textContent()) ?? "";
  expect(token).toMatch(/^qpi_[0-9a-f]{64}$/);
  await expect(done.getByLabel("CA fingerprint (SHA-256)", { exact: true })).toHaveText(stack.caFingerprint);
  const start = done.getByLabel("Install and start (command line)", { exact: true });
  await expect(start).toContainText("qpi-driver start");
  await expect(start).toContainText(token);
  await expect(start).toContainText("--executor mock");
  await expect(done.getByLabel("Install as a systemd service", { exact: true })).toContainText("install-systemd");
  await expect(done.getByRole("button", { name: "Copy Access token" })).toBeVisible();
  await done.getByRole("button", { name: "Done" }).click();

  const card = page.getByRole("listitem", { name: `QPU ${name}` });
  await expect(card.locator(".badge")).toHaveText("offline");
  // The token is never shown again.
  await expect(page.getByText(token)).toHaveCount(0);

  // A real driver connects with the token the dialog showed: the card goes online by itself.
  await control(stack, "/drivers", { token, name });
  await expect(card.locator(".badge")).toHaveText("online", { timeout: 60_000 });
  await expect(card).toContainText("mock");
  await expect(card.getByText(/\bcx\b|\bh\b/)).toBeVisible();

  // The enable switch: a disabled QPU is offline and receives no jobs.
  const toggle = card.getByRole("switch");
  await expect(toggle).toHaveAttribute("aria-checked", "true");
  await toggle.click();
  await expect(toggle).toHaveAttribute("aria-checked", "false");
  await expect(toggle).toHaveText("Disabled");
  await expect(card.locator(".badge")).toHaveText("offline");
  await toggle.click();
  await expect(toggle).toHaveText("Enabled");
  await expect(card.locator(".badge")).toHaveText("online");

  // Stopping the driver shows the QPU offline within 2 s (pushed, not polled).
  await control(stack, `/drivers/${name}/stop`);
  await expect(card.locator(".badge")).toHaveText("offline", { timeout: 2_000 });

  // Delete: cancelling keeps it, confirming removes it.
  await card.getByRole("button", { name: `Delete ${name}` }).click();
  const confirm = page.getByRole("dialog", { name: "Delete QPU" });
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await expect(card).toBeVisible();
  await card.getByRole("button", { name: `Delete ${name}` }).click();
  await confirm.getByRole("button", { name: "Delete" }).click();
  await expect(card).toHaveCount(0);
  await page.reload();
  await expect(page.getByRole("listitem", { name: `QPU ${name}` })).toHaveCount(0);
});

test("registration errors are shown in the dialog", async ({ page, stack, adminSession, consoleAllowed }) => {
  consoleAllowed.push(/status of 409/);
  await openAs(page, stack, adminSession, "qpus");
  await page.getByRole("button", { name: "Register QPU" }).click();
  const dialog = page.getByRole("dialog", { name: "Register QPU" });
  await dialog.getByLabel("Name").fill(stack.qpu);
  await dialog.getByRole("button", { name: "Register" }).click();
  await expect(dialog.getByRole("alert")).toContainText("already exists");
});

test("users see status, executor and gates but no registry controls", async ({ page, stack, rest }) => {
  await openAs(page, stack, await rest.login(stack.user), "qpus");
  const card = page.getByRole("listitem", { name: `QPU ${stack.qpu}` });
  await expect(card.locator(".badge")).toHaveText("online");
  await expect(card).toContainText("mock");
  await expect(card).toContainText("8");
  await expect(page.getByRole("button", { name: "Register QPU" })).toHaveCount(0);
  await expect(card.getByRole("switch")).toHaveCount(0);
  await expect(card.getByRole("button", { name: /Delete/ })).toHaveCount(0);
});
