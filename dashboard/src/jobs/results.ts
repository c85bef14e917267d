// Reading the Qiskit-compatible result dict of a job (spec §5.5) for the result views.

export interface CircuitView {
  index: number;
  shots: number;
  /** Bitstring → count, in ascending bitstring order; null when the entry has no counts. */
  counts: [string, number][] | null;
  /** IQ points per shot for the first clbit/qubit (meas level 1); null otherwise. */
  iq: [number, number][][] | null;
}

export interface ResultView {
  error: string | null;
  circuits: CircuitView[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Normalises count keys: "0x3" hex keys become binary strings as wide as the widest key. */
export function normaliseCounts(raw: unknown): [string, number][] | null {
  if (!isObject(raw)) return null;
  const entries = Object.entries(raw).filter(([, v]) => typeof v === "number") as [string, number][];
  if (entries.length === 0) return null;
  const hex = entries.every(([k]) => /^0x[0-9a-f]+$/i.test(k));
  let keyed = entries;
  if (hex) {
    const bits = entries.map(([k, v]) => [Number.parseInt(k, 16).toString(2), v] as [string, number]);
    const width = Math.max(...bits.map(([k]) => k.length));
    keyed = bits.map(([k, v]) => [k.padStart(width, "0"), v]);
  }
  return keyed.sort(([a], [b]) => (a.length - b.length) || a.localeCompare(b));
}

function isPoint(value: unknown): value is [number, number] {
  return Array.isArray(value) && value.length === 2 && value.every((x) => typeof x === "number");
}

/**
 * IQ points from `memory`: per shot a list of [I, Q] per clbit (meas_return single), or a
 * single averaged shot. Returns one series per clbit; null when memory is not IQ data.
 */
export function iqSeries(memory: unknown): [number, number][][] | null {
  if (!Array.isArray(memory) || memory.length === 0) return null;
  const shots = memory as unknown[];
  if (!shots.every((shot) => Array.isArray(shot) && shot.every(isPoint))) return null;
  const width = Math.max(...(shots as [number, number][][]).map((s) => s.length));
  const series: [number, number][][] = Array.from({ length: width }, () => []);
  for (const shot of shots as [number, number][][]) {
    shot.forEach((point, clbit) => series[clbit]?.push(point));
  }
  return series;
}

function circuitView(entry: Json, index: number, fallbackShots: number): CircuitView {
  const counts = normaliseCounts(entry.counts) ?? normaliseCounts(entry.hex_counts);
  const shots = typeof entry.shots === "number" ? entry.shots : fallbackShots;
  return { index, shots, counts, iq: iqSeries(entry.memory) };
}

/** Everything the result views show, from a job's `results` (or null before it finished). */
export function readResults(results: unknown): ResultView {
  if (!isObject(results)) return { error: null, circuits: [] };
  if (typeof results.error === "string") return { error: results.error, circuits: [] };
  const shots = typeof results.shots === "number" ? results.shots : 0;
  const entries = Array.isArray(results.circuit_results) ? results.circuit_results.filter(isObject) : [];
  const circuits = entries.length
    ? entries.map((entry, i) => circuitView(entry, i, shots))
    : [circuitView(results, 0, shots)];
  return { error: null, circuits };
}
