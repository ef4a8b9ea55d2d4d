// The README's TypeScript examples must compile against the current API.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EXPORTS = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).exports as Record<
  string,
  { import: string }
>;

test("every ```ts block in the README type-checks", { timeout: 120_000 }, () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  assert.ok(blocks.length >= 3, "the README shows its API in ```ts blocks");
  const dir = join(ROOT, ".tmp", `readme-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    blocks.forEach((code, i) => {
      // Each package subpath to its source, as package.json's exports map them to dist/.
      const local = code.replace(/from "(globalclock(?:\/[a-z]+)?)"/g, (_all, spec: string) => {
        const target = EXPORTS[`.${spec.slice("globalclock".length)}`]?.import;
        assert.ok(target, `the README imports ${spec}, which package.json does not export`);
        return `from "../../${target.replace(/^\.\/dist\//, "src/")}"`;
      });
      writeFileSync(join(dir, `example${i}.ts`), `export {};\n${local}`);
    });
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: "../../tsconfig.json",
        compilerOptions: { noEmit: true },
        include: ["*.ts"],
      }),
    );
    const tsc = spawnSync(
      process.execPath,
      [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", dir],
      {
        encoding: "utf8",
      },
    );
    assert.equal(tsc.status, 0, `${tsc.stdout}${tsc.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
