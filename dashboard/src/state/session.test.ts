import { describe, expect, it, vi } from "vitest";

vi.stubGlobal("localStorage", { getItem: () => null, setItem: () => undefined, removeItem: () => undefined });
vi.stubGlobal("window", { addEventListener: () => undefined, location: { origin: "http://t" } });

const { secondsLeft } = await import("./session");

function jwt(payload: object): string {
  const body = btoa(JSON.stringify(payload)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  return `eyJhbGciOiJIUzI1NiJ9.${body}.sig`;
}

describe("secondsLeft", () => {
  it("reads a session token's expiry", () => {
    expect(secondsLeft(jwt({ exp: 1_000 }), 400_000)).toBe(600);
  });

  it("treats tokens without an expiry (API tokens) as not expiring", () => {
    expect(secondsLeft("qpi_" + "0".repeat(64))).toBe(Infinity);
    expect(secondsLeft(jwt({ sub: "u" }))).toBe(Infinity);
  });
});
