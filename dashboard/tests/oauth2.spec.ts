// OAuth2 sign-in in the browser: the provider button from auth-methods, the server-side
// authorization-code + PKCE flow against a real OpenID Connect provider (node oidc-provider),
// and the dashboard's exchange of the one-time code.
import { control, expect, test } from "./support/fixtures";

test("a user signs in with an OAuth2 provider", async ({ page, stack }) => {
  test.setTimeout(180_000);
  const { url, issuer } = await control<{ url: string; issuer: string }>(stack, "/oauth2");
  await page.goto(`${url}/dashboard/`);
  const button = page.getByRole("link", { name: "Continue with Lab IdP" });
  await expect(button).toHaveAttribute("href", /^\/api\/oauth2\/local\/authorize/);
  // No provider buttons for administrators.
  await page.getByRole("tab", { name: "Administrator" }).click();
  await expect(button).toHaveCount(0);
  await page.getByRole("tab", { name: "Regular User" }).click();

  await button.click();
  // The provider's own pages: sign in, then consent.
  await expect(page).toHaveURL(new RegExp(`^${issuer}/`));
  await page.locator('input[name="login"]').fill("oauth-alice@example.com");
  await page.locator('input[name="password"]').fill("any");
  await page.locator('button[type="submit"]').click();
  await page.locator('button[type="submit"]').click(); // consent
  // Back on the dashboard, signed in, and the one-time code is gone from the address.
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Overview");
  await expect(page.getByRole("button", { name: "oauth-alice@example.com" })).toBeVisible();
  expect(page.url()).toBe(`${url}/dashboard/#overview`);
  await expect(page.getByTestId("feed-status")).toHaveText("Live");
});

test("OAuth2 failures are shown on the sign-in dialog", async ({ page, stack, consoleAllowed }) => {
  consoleAllowed.push(/status of 40[01]/);
  const { url } = await control<{ url: string }>(stack, "/oauth2");
  await page.goto(`${url}/dashboard/?oauth2_error=The%20sign-in%20was%20refused.#overview`);
  await expect(page.getByRole("dialog").getByRole("alert")).toHaveText("The sign-in was refused.");
  expect(page.url()).toBe(`${url}/dashboard/#overview`);
  // A code that was never issued (or is used twice) is refused by the exchange.
  await page.goto(`${url}/dashboard/?oauth2_code=not-a-real-code#overview`);
  await expect(page.getByRole("dialog").getByRole("alert")).not.toBeEmpty();
  await expect(page.getByRole("dialog", { name: "Sign in to QPI" })).toBeVisible();
  expect(page.url()).toBe(`${url}/dashboard/#overview`);
});
