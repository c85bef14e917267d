import { describe, expect, it } from "vitest";
import { hrefOf, parseHash } from "./router";

describe("parseHash", () => {
  it("reads known pages and their detail", () => {
    expect(parseHash("#jobs")).toEqual({ page: "jobs", detail: "", known: true });
    expect(parseHash("#jobs/abc123")).toEqual({ page: "jobs", detail: "abc123", known: true });
    expect(parseHash("#/qpus")).toEqual({ page: "qpus", detail: "", known: true });
  });

  it("falls back to the overview", () => {
    expect(parseHash("")).toEqual({ page: "overview", detail: "", known: true });
    expect(parseHash("#nope")).toEqual({ page: "overview", detail: "", known: false });
  });

  it("round-trips details through hrefOf", () => {
    expect(parseHash(hrefOf("jobs", "a/b c")).detail).toBe("a/b c");
  });
});
