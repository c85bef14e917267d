// §12 jobs-console: defaults, submission, live results (histogram, IQ scatter, raw JSON),
// live list across tabs, failures, cancel, only online QPUs, paging.
import { BELL, control, expect, newUser, openAs, test, unique, type Rest, type Session } from "./support/fixtures";

const UNBOUND = `OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[1] q;
bit[1] c;
rx(theta) q[0];
c[0] = measure q[0];
`;

async function submit(rest: Rest, user: Session, body: Record<string, unknown>) {
  return rest.call<{ id: string; status: string }>("POST", "/api/jobs", user.token, {
    circuits: [{ circuit: BELL }],
    shots: 100,
    ...body,
  });
}

test("defaults, then a submitted job shows its histogram within 2 s on a warm driver", async ({
  page,
  stack,
  rest,
  adminSession,
}) => {
  const user = await newUser(rest, adminSession, "console");
  await openAs(page, stack, user, "jobs");
  await expect(page.getByText("Select a job to see its status and results.")).toBeVisible();
  const qpu = page.getByRole("combobox", { name: "QPU" });
  await expect(qpu.locator("option:checked")).toHaveText(/^mock_qpu/);
  const editor = page.getByTestId("qasm-editor");
  await expect(editor).toContainText("OPENQASM 3.0;");
  await expect(editor).toContainText("cx q[0], q[1];");
  await expect(page.getByLabel("Shots")).toHaveValue("1000");
  await expect(page.getByLabel("Measurement level")).toHaveValue("2");
  const execute = page.getByRole("button", { name: "Execute Job" });
  await expect(execute).toBeEnabled();

  // Warm this tab's path once (editor chunk loaded, driver busy-free), then measure.
  await execute.click();
  await expect(page.getByTestId("job-details")).toHaveAttribute("data-status", "completed");
  const warmId = (await page.evaluate(() => window.location.hash)).split("/")[1];
  const started = Date.now();
  await execute.click();
  const details = page.getByTestId("job-details");
  const histogram = page.getByTestId("histogram");
  await expect(async () => {
    const id = (await page.evaluate(() => window.location.hash)).split("/")[1];
    expect(id).toBeTruthy();
    expect(id).not.toBe(warmId); // the new job's, not the warm-up's
    await expect(details).toHaveAttribute("data-status", "completed", { timeout: 100 });
    await expect(details).toContainText(id!.slice(0, 8), { timeout: 100 });
    await expect(histogram).toBeVisible({ timeout: 100 });
  }).toPass({ timeout: 2_000, intervals: [20] });
  const elapsed = Date.now() - started;
  test.info().annotations.push({ type: "execute-to-histogram", description: `${elapsed} ms` });
  console.log(`execute → histogram: ${elapsed} ms`);

  const jobId = (await page.evaluate(() => window.location.hash)).split("/")[1]!;
  await expect(details).toHaveAttribute("data-status", "completed");
  await expect(details.getByRole("heading")).toHaveText(`Job ${jobId.slice(0, 8)}`);
  await expect(details).toContainText("Executed on mock_qpu");
  await expect(details.getByTestId("job-duration")).toHaveText(/\d+(\.\d+)? s/);
  await expect(details.getByRole("tab", { name: "Counts" })).toHaveAttribute("aria-selected", "true");
  // Bell state: only 00 and 11 occur, and together they make up every shot.
  const bars = histogram.locator("g.bar");
  await expect(bars).toHaveCount(4);
  const counts = Object.fromEntries(
    await bars.evaluateAll((gs) => gs.map((g) => [g.getAttribute("data-state"), Number(g.getAttribute("data-count"))])),
  ) as Record<string, number>;
  expect(counts["01"] ?? 0).toBe(0);
  expect(counts["10"] ?? 0).toBe(0);
  expect((counts["00"] ?? 0) + (counts["11"] ?? 0)).toBe(1000);
  await expect(details).toContainText("Attempts1");

  // The job records the QPU chosen in the picker.
  const record = await rest.call<{ qpu_target: string; payload: { shots: number } }>("GET", `/api/jobs/${jobId}`, user.token);
  const qpus = await rest.call<{ id: string; name: string }[]>("GET", "/api/qpus", user.token);
  expect(record.qpu_target).toBe(qpus.find((q) => q.name === stack.qpu)!.id);
  expect(record.payload.shots).toBe(1000);

  await details.getByRole("tab", { name: "Raw JSON" }).click();
  await expect(page.locator("pre.raw-json")).toContainText('"counts"');
});

test("the list is live across tabs: status changes arrive without reload", async ({
  context,
  page,
  stack,
  rest,
  adminSession,
}) => {
  const user = await newUser(rest, adminSession, "tabs");
  const qpuName = unique("tabs_qpu");
  const created = await rest.call<{ access_token: string }>("POST", "/api/op/qpus/create", adminSession.token, {
    name: qpuName,
  });
  await openAs(page, stack, user, "jobs");
  const second = await context.newPage();
  await second.goto(`${stack.url}/dashboard/#jobs`);
  await expect(second.getByTestId("feed-status")).toHaveText("Live");
  await second.evaluate(() => ((window as unknown as { marker: string }).marker = "no reload"));

  // No driver yet: the job waits (pending) and both tabs list it.
  const job = await submit(rest, user, { qpu_target: qpuName });
  for (const tab of [page, second]) {
    await expect(tab.locator(`tr[data-job-id="${job.id}"]`)).toContainText("pending");
  }
  await second.locator(`tr[data-job-id="${job.id}"]`).getByRole("link").click();
  await expect(second.getByTestId("job-details")).toHaveAttribute("data-status", "pending");
  // A driver arrives: the job runs and completes; the second tab sees it happen.
  await control(stack, "/drivers", { token: created.access_token, name: qpuName });
  await expect(second.locator(`tr[data-job-id="${job.id}"]`)).toContainText("completed", { timeout: 60_000 });
  await expect(second.getByTestId("job-details")).toHaveAttribute("data-status", "completed");
  await expect(second.getByTestId("histogram")).toBeVisible();
  expect(await second.evaluate(() => (window as unknown as { marker: string }).marker)).toBe("no reload");
  await control(stack, `/drivers/${qpuName}/stop`);
});

test("the QPU picker lists only online QPUs and records the choice", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "picker");
  const offline = unique("offline_qpu");
  await rest.call("POST", "/api/op/qpus/create", adminSession.token, { name: offline });
  const second = unique("second_qpu");
  const created = await rest.call<{ id: string; access_token: string }>("POST", "/api/op/qpus/create", adminSession.token, {
    name: second,
  });
  await control(stack, "/drivers", { token: created.access_token, name: second });
  await openAs(page, stack, user, "jobs");
  const picker = page.getByRole("combobox", { name: "QPU" });
  await expect(picker.locator("option", { hasText: second })).toHaveCount(1, { timeout: 60_000 });
  await expect(picker.locator("option", { hasText: offline })).toHaveCount(0);
  await picker.selectOption(created.id);
  await page.getByLabel("Shots").fill("64");
  await page.getByRole("button", { name: "Execute Job" }).click();
  const details = page.getByTestId("job-details");
  await expect(details).toHaveAttribute("data-status", "completed", { timeout: 60_000 });
  await expect(details).toContainText(`Executed on ${second}`);
  const jobId = (await page.evaluate(() => window.location.hash)).split("/")[1]!;
  const record = await rest.call<{ qpu_target: string }>("GET", `/api/jobs/${jobId}`, user.token);
  expect(record.qpu_target).toBe(created.id);

  // Its driver stops: the QPU leaves the picker.
  await control(stack, `/drivers/${second}/stop`);
  await expect(picker.locator("option", { hasText: second })).toHaveCount(0);
});

test("meas level 1 shows an IQ scatter", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "iq");
  await openAs(page, stack, user, "jobs");
  await page.getByLabel("Measurement level").selectOption("1");
  await page.getByLabel("Shots").fill("200");
  await page.getByRole("button", { name: "Execute Job" }).click();
  const details = page.getByTestId("job-details");
  await expect(details).toHaveAttribute("data-status", "completed");
  await expect(details.getByRole("tab", { name: "IQ Scatter" })).toHaveAttribute("aria-selected", "true");
  const scatter = page.getByTestId("iq-scatter");
  await expect(scatter.getByRole("img")).toHaveAccessibleName("IQ scatter of 400 points");
  await expect(scatter).toContainText("qubit 0 (200 shots)");
  await expect(scatter.locator("circle")).toHaveCount(400);
});

test("a failed job shows its error; a waiting job can be cancelled", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "failcancel");
  // Only the executor binds parameters, so an unbound one fails on the driver, with a
  // clear message (what the server can check, such as meas level 0, is refused at submit).
  const failed = await submit(rest, user, { qpu_target: stack.qpu, circuits: [{ circuit: UNBOUND }] });
  await openAs(page, stack, user, `jobs/${failed.id}`);
  const details = page.getByTestId("job-details");
  await expect(details).toHaveAttribute("data-status", "failed");
  await expect(details.getByRole("note")).toContainText(/unbound parameters: theta/i);
  await expect(details.getByRole("button", { name: "Cancel Job" })).toHaveCount(0);

  const idle = unique("idle_cancel_qpu");
  await rest.call("POST", "/api/op/qpus/create", adminSession.token, { name: idle });
  const waiting = await submit(rest, user, { qpu_target: idle });
  await page.evaluate((id) => (window.location.hash = `#jobs/${id}`), waiting.id);
  await expect(details).toHaveAttribute("data-status", "pending");
  await expect(details).toContainText("Waiting for the result…");
  await details.getByRole("button", { name: "Cancel Job" }).click();
  await expect(details).toHaveAttribute("data-status", "cancelled");
  await expect(page.locator(`tr[data-job-id="${waiting.id}"]`)).toContainText("cancelled");
});

test("thousands of jobs are paged; new jobs appear on the first page", async ({ page, stack, rest, adminSession }) => {
  const user = await newUser(rest, adminSession, "paging", 100_000);
  const idle = unique("paging_qpu");
  await rest.call("POST", "/api/op/qpus/create", adminSession.token, { name: idle });
  const ids: string[] = [];
  for (let i = 0; i < 60; i += 1) ids.push((await submit(rest, user, { qpu_target: idle, shots: 1 })).id);
  await openAs(page, stack, user, "jobs");
  const list = page.getByTestId("job-list");
  await expect(page.getByText("Page 1 of 3 · 60 jobs")).toBeVisible();
  await expect(list.locator("tbody tr")).toHaveCount(25);
  await expect(list.locator("tbody tr").first()).toHaveAttribute("data-job-id", ids[59]!);
  await page.getByRole("button", { name: "Next" }).click();
  await expect(page.getByText("Page 2 of 3 · 60 jobs")).toBeVisible();
  await expect(list.locator("tbody tr").first()).toHaveAttribute("data-job-id", ids[34]!);
  await page.getByRole("button", { name: "Next" }).click();
  await expect(list.locator("tbody tr")).toHaveCount(10);
  await page.getByRole("button", { name: "Previous" }).click();
  await page.getByRole("button", { name: "Previous" }).click();
  const fresh = await submit(rest, user, { qpu_target: idle, shots: 1 });
  await expect(list.locator("tbody tr").first()).toHaveAttribute("data-job-id", fresh.id);
  await expect(page.getByText("Page 1 of 3 · 61 jobs")).toBeVisible();
  // The status filter narrows the list on the server.
  await rest.call("POST", `/api/jobs/${fresh.id}/cancel`, user.token);
  await page.getByLabel("Status").selectOption("cancelled");
  await expect(page.getByText("Page 1 of 1 · 1 jobs")).toBeVisible();
  await expect(list.locator("tbody tr")).toHaveCount(1);
  for (const id of ids) await rest.call("POST", `/api/jobs/${id}/cancel`, user.token);
});

test("submission errors from the server are shown", async ({ page, stack, rest, adminSession, consoleAllowed }) => {
  consoleAllowed.push(/status of 400/);
  const user = await newUser(rest, adminSession, "badqasm");
  await openAs(page, stack, user, "jobs");
  const editor = page.getByTestId("qasm-editor");
  await editor.click();
  await page.keyboard.press("Control+a");
  await page.keyboard.type("this is not qasm");
  await page.getByRole("button", { name: "Execute Job" }).click();
  await expect(page.getByRole("main").getByRole("alert")).toBeVisible();
  await expect(page.getByText("Select a job to see its status and results.")).toBeVisible();
  await page.getByRole("button", { name: "Load Example" }).click();
  await expect(editor).toContainText("OPENQASM 3.0;");
});
