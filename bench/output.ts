/**
 * Writes a run's files under bench/results/: the JSON, the Markdown tables, the failover
 * chart, and (for a full run of every part) the README's benchmark section. Run alone, it
 * renders everything again from a saved JSON without measuring anything:
 * `node --import tsx bench/output.ts [bench/results/bench.json]`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { failoverChart } from "./chart.js";
import { outageChart } from "./outage-chart.js";
import { README, readmeSection, writeReadme } from "./readme.js";
import { type BenchResults, markdown } from "./report.js";

const DIR = fileURLToPath(new URL("./results/", import.meta.url));

/** Writes `<name>.md` and the chart (and the JSON unless `json` is false); returns the Markdown. */
export function writeOutputs(results: BenchResults, name: string, json = true): string {
  mkdirSync(DIR, { recursive: true });
  const files = [`${DIR}${name}.md`];
  if (json) {
    writeFileSync(`${DIR}${name}.json`, `${JSON.stringify(results, null, 2)}\n`);
    files.push(`${DIR}${name}.json`);
  }
  const first = results.failover[0];
  const chart = first ? `${name === "bench" ? "failover" : `${name}-failover`}.svg` : undefined;
  if (first && chart) {
    const stalls = first.kills.map((k) => k.stallMs);
    writeFileSync(`${DIR}${chart}`, failoverChart(first.trace, first.store, stalls));
  }
  const outage = results.outage.length
    ? `${name === "bench" ? "outage" : `${name}-outage`}.svg`
    : undefined;
  if (outage) writeFileSync(`${DIR}${outage}`, outageChart(results.outage));
  const md = markdown(results, chart, outage);
  writeFileSync(`${DIR}${name}.md`, md);
  // The results are committed, so they are formatted as the linter wants them.
  const biome = fileURLToPath(new URL("../node_modules/.bin/biome", import.meta.url));
  spawnSync(biome, ["format", "--write", ...files], { stdio: "ignore" });
  if (name === "bench") writeReadme(README, readmeSection(results));
  return md;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? `${DIR}bench.json`;
  // Runs saved before a part existed lack its field.
  const saved = JSON.parse(readFileSync(file, "utf8")) as Partial<BenchResults>;
  const results = {
    leases: [],
    handover: [],
    scale: [],
    outage: [],
    peers: undefined,
    ...saved,
  } as BenchResults;
  writeOutputs(results, basename(file, ".json"), false);
  process.stdout.write(`rendered again from ${file}\n`);
}
