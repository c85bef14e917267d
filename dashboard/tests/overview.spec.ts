// §12 overview-header (without theming) and error edge cases: metric cards (live), the
// notification bell and panel, recent jobs, quick actions, light/dark mode.
import { BELL, control, expect, newUser, openAs, test, unique, type Rest, type Session } from "./support/fixtures";

interface Qpu {
  id: string;
  name: string;
  status: string;
}

async function broadcast(rest: Rest, admin: Session, title: string, targets: string[] = [], offsetH = 0) {
  const hour = 3600_000;
  return rest.call<{ id: string }>("POST", "/api/collections/notifications/records", admin.token, {
    title,
    description: "Details for the lab.",
    target_users: targets,
    start_time: new Date(Date.now() - hour + offsetH * hour).toISOString(),
    end_time: new Date(Date.now() + hour + offsetH * hour).toISOString(),
  });
}

test("metric cards match the API and follow changes live", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "metrics", 750);
  await openAs(page, stack, user);
  const qpus = await rest.call<Qpu[]>("GET", "/api/qpus", user.token);
  const online = qpus.filter((q) => q.status === "online").length;
  const metric = (label: string) => page.getByRole("link", { name: new RegExp(`^${label}`) });
  await expect(metric("Active QPUs")).toContainText(`${online}/${qpus.length}`);
  await expect(metric("Queue Status")).toContainText("0 pending · 0 running");
  await expect(metric("Time Credit")).toContainText("750.0s");
  const slots = await rest.call<{ totalItems: number }>(
    "GET",
    `/api/collections/time_slots/records?filter=${encodeURIComponent("end_time > @now")}`,
    user.token,
  );
  if (slots.totalItems === 0) await expect(metric("Next Booking")).toContainText("None Scheduled");
  await expect(metric("Active QPUs")).toHaveAttribute("href", "#qpus");
  await expect(metric("Queue Status")).toHaveAttribute("href", "#jobs");
  await expect(metric("Next Booking")).toHaveAttribute("href", "#bookings");

  // A QPU without a running driver keeps a job pending: the queue card changes without reload.
  await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
  const name = unique("idle_qpu");
  await rest.call("POST", "/api/op/qpus/create", adminSession.token, { name });
  await expect(metric("Active QPUs")).toContainText(`${online}/${qpus.length + 1}`);
  const job = await rest.call<{ id: string }>("POST", "/api/jobs", user.token, {
    circuits: [{ circuit: BELL }],
    shots: 10,
    qpu_target: name,
  });
  await expect(metric("Queue Status")).toContainText("1 pending · 0 running");
  await rest.call("POST", `/api/jobs/${job.id}/cancel`, user.token);
  await expect(metric("Queue Status")).toContainText("0 pending · 0 running");

  // Bookings are read when the overview is shown: a new, soonest booking becomes the next one.
  const start = new Date(Date.now() + (60 + Math.floor(Math.random() * 600)) * 60_000);
  const slot = await rest.call<{ id: string }>("POST", "/api/collections/time_slots/records", user.token, {
    start_time: start.toISOString(),
    end_time: new Date(start.getTime() + 60_000).toISOString(),
  });
  await page.getByRole("link", { name: "Bookings" }).click();
  await page.getByRole("link", { name: "Overview" }).click();
  await expect(metric("Next Booking")).toContainText(user.record.email);
  await rest.call("DELETE", `/api/collections/time_slots/records/${slot.id}`, user.token);
  expect(await page.evaluate(() => (window as unknown as { marker: number }).marker)).toBe(42);
});

test("the balance follows charges live after a job completes", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "balance", 500);
  await openAs(page, stack, user);
  const card = page.getByRole("link", { name: /^Time Credit/ });
  await expect(card).toContainText("500.0s");
  const job = await rest.call<{ id: string }>("POST", "/api/jobs", user.token, {
    circuits: [{ circuit: BELL }],
    shots: 100,
    qpu_target: stack.qpu,
  });
  await expect
    .poll(async () => (await rest.call<{ status: string }>("GET", `/api/jobs/${job.id}`, user.token)).status)
    .toBe("completed");
  const after = await rest.call<{ qpu_seconds: number }>("GET", `/api/collections/users/records/${user.record.id}`, user.token);
  expect(after.qpu_seconds).toBeLessThan(500);
  const shown = `${after.qpu_seconds.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 })}s`;
  await expect(card).toContainText(shown);
  await expect(page.getByRole("region", { name: "QPU balance" }).getByTestId("balance")).toHaveText(shown);
});

test("recent jobs show real data with QPU names, newest first, live", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "recent");
  await openAs(page, stack, user);
  const table = page.getByRole("table", { name: "The ten newest jobs" });
  await expect(page.getByText("No jobs yet. Submit one from the Jobs Console.")).toBeVisible();
  const job = await rest.call<{ id: string }>("POST", "/api/jobs", user.token, {
    circuits: [{ circuit: BELL }],
    shots: 50,
    qpu_target: stack.qpu,
  });
  const row = table.locator(`tr[data-job-id="${job.id}"]`);
  await expect(row).toContainText(job.id.slice(0, 8));
  await expect(row).toContainText(stack.qpu);
  await expect(row).toContainText("completed");
  await row.getByRole("link").click();
  await expect(page).toHaveURL(new RegExp(`#jobs/${job.id}$`));
});

test("quick actions navigate", async ({ page, stack, rest }) => {
  await openAs(page, stack, await rest.login(stack.user));
  await page.getByRole("link", { name: "Submit Job" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Jobs Console");
  await page.goBack();
  await page.getByRole("link", { name: "Book Slot" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Bookings");
});

test("notifications: broadcast vs targeted, per-user dismiss, Clear All", async ({
  browser,
  stack,
  rest,
  adminSession,
}) => {
  const alice = await newUser(rest, adminSession, "alice");
  const bob = await newUser(rest, adminSession, "bob");
  const pageA = await (await browser.newContext()).newPage();
  const pageB = await (await browser.newContext()).newPage();
  await openAs(pageA, stack, alice);
  await openAs(pageB, stack, bob);

  const everyone = unique("Maintenance window");
  const forAlice = unique("Your calibration failed");
  const future = unique("Next month");
  const created = [
    await broadcast(rest, adminSession, everyone),
    await broadcast(rest, adminSession, forAlice, [alice.record.id]),
    await broadcast(rest, adminSession, future, [], 3),
  ];

  // Pushed: both bells update without reload.
  await expect(pageA.getByTestId("bell-count")).toHaveText("2");
  await expect(pageB.getByTestId("bell-count")).toHaveText("1");
  const panelA = pageA.getByRole("region", { name: "Notifications" });
  await pageA.getByRole("button", { name: /^Notifications/ }).click();
  await expect(panelA.getByText(everyone)).toBeVisible();
  await expect(panelA.getByText(forAlice)).toBeVisible();
  await expect(panelA.getByText(future)).toHaveCount(0);
  // Titles mentioning a failure are styled as errors.
  await expect(panelA.locator("li.note-error")).toContainText(forAlice);
  await pageB.getByRole("button", { name: /^Notifications/ }).click();
  await expect(pageB.getByRole("region", { name: "Notifications" }).getByText(forAlice)).toHaveCount(0);

  // Alice dismisses the broadcast: gone for her (also after reload), Bob still has it.
  await panelA.getByRole("button", { name: `Dismiss ${everyone}` }).click();
  await expect(pageA.getByTestId("bell-count")).toHaveText("1");
  await pageA.reload();
  await expect(pageA.getByTestId("bell-count")).toHaveText("1");
  await expect(pageB.getByTestId("bell-count")).toHaveText("1");
  // The overview panel lists the same notifications.
  await expect(pageB.getByRole("main").getByText(everyone, { exact: true })).toBeVisible();

  // Clear All dismisses every visible one.
  await pageA.getByRole("button", { name: /^Notifications/ }).click();
  await pageA.getByRole("region", { name: "Notifications" }).getByRole("button", { name: "Clear All" }).click();
  await expect(pageA.getByTestId("bell-count")).toHaveCount(0);
  await expect(pageA.getByRole("region", { name: "Notifications" }).getByText("No new notifications")).toBeVisible();
  await pageA.reload();
  await expect(pageA.getByRole("button", { name: "Notifications (0)" })).toBeVisible();
  // Deleting is pushed too: Bob's bell empties (and later tests start clean).
  for (const note of created) {
    await rest.call("DELETE", `/api/collections/notifications/records/${note.id}`, adminSession.token);
  }
  await expect(pageB.getByRole("button", { name: "Notifications (0)" })).toBeVisible();
  await pageA.context().close();
  await pageB.context().close();
});

test("a failed dismiss is reported to the user", async ({ page, stack, rest, adminSession, consoleAllowed }) => {
  consoleAllowed.push(/ERR_FAILED|Failed to load resource/);
  const user = await newUser(rest, adminSession, "dismissfail");
  const title = unique("Unreachable dismiss");
  const note = await broadcast(rest, adminSession, title, [user.record.id]);
  await openAs(page, stack, user);
  await page.route("**/api/notifications/*/dismiss", (route) => route.abort("failed"));
  await page.getByRole("button", { name: /^Notifications/ }).click();
  await page.getByRole("region", { name: "Notifications" }).getByRole("button", { name: `Dismiss ${title}` }).click();
  await expect(page.getByRole("alert").filter({ hasText: "Could not dismiss the notification" })).toBeVisible();
  await expect(page.getByRole("region", { name: "Notifications" }).getByText(title, { exact: true })).toBeVisible();
  await rest.call("DELETE", `/api/collections/notifications/records/${note.id}`, adminSession.token);
});

test("dark mode by default; the toggle persists light mode", async ({ page, stack, rest }) => {
  await openAs(page, stack, await rest.login(stack.user));
  const html = page.locator("html");
  await expect(html).toHaveAttribute("data-theme", "dark");
  expect(await page.evaluate(() => localStorage.getItem("theme"))).toBeNull();
  await page.getByRole("button", { name: "Switch to light mode" }).click();
  await expect(html).toHaveAttribute("data-theme", "light");
  expect(await page.evaluate(() => localStorage.getItem("theme"))).toBe("light");
  await page.reload();
  await expect(html).toHaveAttribute("data-theme", "light");
  await page.getByRole("button", { name: "Switch to dark mode" }).click();
  await expect(html).toHaveAttribute("data-theme", "dark");
});

test("empty states on a fresh server", async ({ page, stack, rest: _rest }) => {
  const { url } = await control<{ url: string }>(stack, "/servers", { args: ["--disable-email-password-auth"] });
  const { Rest } = await import("./support/fixtures");
  const fresh = new Rest(url);
  const admin = await fresh.login(stack.admin, true);
  await openAs(page, { ...stack, url }, admin, "qpus");
  await expect(page.getByText("No QPUs registered yet.")).toBeVisible();
  await page.getByRole("link", { name: "Overview" }).click();
  await expect(page.getByText("No jobs yet. Submit one from the Jobs Console.")).toBeVisible();
  await expect(page.getByRole("link", { name: /^Active QPUs/ })).toContainText("0/0");
  await page.getByRole("link", { name: "Jobs Console" }).click();
  await expect(page.getByText("Select a job to see its status and results.")).toBeVisible();
  await expect(page.getByRole("combobox", { name: "QPU" })).toHaveText("No online QPUs available");
  await expect(page.getByRole("button", { name: "Execute Job" })).toBeDisabled();
  await page.getByRole("link", { name: "Drivers" }).click();
  await expect(page.getByText("No drivers registered yet.")).toBeVisible();
});
