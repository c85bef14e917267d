// Fails the build when the JavaScript a first visit downloads exceeds the budget (gzipped).
// "First load" = the entry script plus every module it preloads, as listed in dist/index.html;
// lazily loaded chunks (the Jobs console's editor) are reported but not counted.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 300 * 1024;
const dist = new URL("../dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const initial = new Set(
  [...html.matchAll(/(?:src|href)="\/dashboard\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]),
);
const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
const all = readdirSync(join(dist, "assets")).filter((f) => f.endsWith(".js")).map((f) => `assets/${f}`);

let total = 0;
for (const file of all) {
  const size = gz(file);
  if (initial.has(file)) total += size;
  console.log(`${initial.has(file) ? "initial" : "lazy   "}  ${(size / 1024).toFixed(1).padStart(7)} KB gz  ${file}`);
}
console.log(`first load: ${(total / 1024).toFixed(1)} KB gzipped JS (budget ${BUDGET / 1024} KB)`);
if (initial.size === 0) {
  console.error("no entry script found in dist/index.html");
  process.exit(1);
}
if (total > BUDGET) {
  console.error("first-load JavaScript is over budget");
  process.exit(1);
}
