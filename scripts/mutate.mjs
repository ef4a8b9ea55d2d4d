// `npm run mutate`: Stryker over the clock and lease core (stryker.config.mjs), then the
// per-file summary committed as test/mutation/summary.json. Not in CI: about 40 minutes on 2 cores.
// Mutants marked equivalent in the source (`// Stryker disable next-line …: reason`) are
// counted as `ignored`, apart from the score, so that the summary shows how many there are.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const args = process.argv.slice(2);
const run = spawnSync("npx", ["stryker", "run", ...args], { stdio: "inherit" });
if (run.status !== 0) process.exit(run.status ?? 1);

const report = JSON.parse(readFileSync("reports/mutation/mutation.json", "utf8"));
const count = (mutants, status) => mutants.filter((m) => m.status === status).length;
const files = {};
const total = { killed: 0, survived: 0, timeout: 0, noCoverage: 0, ignored: 0, errors: 0 };
for (const [file, { mutants }] of Object.entries(report.files).sort()) {
  const row = {
    killed: count(mutants, "Killed"),
    survived: count(mutants, "Survived"),
    timeout: count(mutants, "Timeout"),
    noCoverage: count(mutants, "NoCoverage"),
    ignored: count(mutants, "Ignored"),
    errors: count(mutants, "RuntimeError") + count(mutants, "CompileError"),
  };
  for (const k of Object.keys(total)) total[k] += row[k];
  files[file] = { ...row, score: score(row) };
}
/** Stryker's mutation score: detected (killed or timed out) over valid mutants, in percent. */
function score(r) {
  const valid = r.killed + r.timeout + r.survived + r.noCoverage;
  return valid === 0 ? 100 : Math.round(((r.killed + r.timeout) / valid) * 10000) / 100;
}
const leases = Object.entries(files)
  .filter(([f]) => f.startsWith("src/leases/"))
  .reduce(
    (a, [, r]) => {
      for (const k of Object.keys(total)) a[k] += r[k];
      return a;
    },
    { killed: 0, survived: 0, timeout: 0, noCoverage: 0, ignored: 0, errors: 0 },
  );
const summary = {
  files,
  "src/leases/": { ...leases, score: score(leases) },
  total: { ...total, score: score(total) },
};
writeFileSync("test/mutation/summary.json", `${JSON.stringify(summary, null, 2)}\n`);
console.log(
  `mutation score: ${summary.total.score} % overall, ${summary["src/leases/"].score} % in src/leases/`,
);
