import { describe, expect, it } from "vitest";
import { iqSeries, normaliseCounts, readResults } from "./results";

describe("readResults", () => {
  it("reads counts per circuit in bitstring order", () => {
    const view = readResults({
      shots: 100,
      circuit_results: [
        { counts: { "11": 48, "00": 52, "01": 0, "10": 0 }, shots: 100 },
        { counts: { "1": 7, "0": 3 }, shots: 10 },
      ],
      counts: { "00": 52, "11": 48 },
    });
    expect(view.error).toBeNull();
    expect(view.circuits).toHaveLength(2);
    expect(view.circuits[0]?.counts).toEqual([
      ["00", 52],
      ["01", 0],
      ["10", 0],
      ["11", 48],
    ]);
    expect(view.circuits[1]?.shots).toBe(10);
  });

  it("reports a failed job's error", () => {
    expect(readResults({ error: "unsupported gate foo" })).toEqual({ error: "unsupported gate foo", circuits: [] });
  });

  it("falls back to top-level counts and converts hex keys", () => {
    const view = readResults({ shots: 4, hex_counts: { "0x0": 1, "0x3": 3 } });
    expect(view.circuits[0]?.counts).toEqual([
      ["00", 1],
      ["11", 3],
    ]);
  });

  it("has nothing to show before a job finished", () => {
    expect(readResults(undefined)).toEqual({ error: null, circuits: [] });
  });
});

describe("iqSeries", () => {
  it("splits single-shot memory into one series per clbit", () => {
    const series = iqSeries([
      [
        [1, 2],
        [3, 4],
      ],
      [
        [5, 6],
        [7, 8],
      ],
    ]);
    expect(series).toEqual([
      [
        [1, 2],
        [5, 6],
      ],
      [
        [3, 4],
        [7, 8],
      ],
    ]);
  });

  it("rejects memory that is not IQ points", () => {
    expect(iqSeries(["0x1", "0x0"])).toBeNull();
    expect(iqSeries([])).toBeNull();
  });
});

describe("normaliseCounts", () => {
  it("ignores non-numeric values", () => {
    expect(normaliseCounts({ "0": 1, bad: "x" })).toEqual([["0", 1]]);
  });
});
