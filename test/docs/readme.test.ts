// The README's examples must compile against the current API: the ```ts blocks as
// TypeScript, the ```js blocks as checked JavaScript (readme-examples.test.ts runs them).
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

test("every ```ts and ```js block in the README type-checks", { timeout: 120_000 }, () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = [...readme.matchAll(/```(ts|js)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1] as string,
    code: m[2] as string,
  }));
  assert.ok(blocks.filter((b) => b.lang === "ts").length >= 1, "a ```ts block");
  assert.ok(blocks.filter((b) => b.lang === "js").length >= 3, "```js blocks");
  const dir = join(ROOT, ".tmp", `readme-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    blocks.forEach(({ lang, code }, i) => {
      // Each package subpath to its source, as package.json's exports map them to dist/.
      const local = code.replace(
        /(from |import\()"(globalclock(?:\/[a-z]+)?)"/g,
        (_all, before: string, spec: string) => {
          const target = EXPORTS[`.${spec.slice("globalclock".length)}`]?.import;
          assert.ok(target, `the README imports ${spec}, which package.json does not export`);
          const source = `../../${target.replace(/^\.\/dist\//, "src/")}`;
          return `${before}"${source}"`;
        },
      );
      writeFileSync(join(dir, `example${i}.${lang}`), `export {};\n${local}`);
    });
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: "../../tsconfig.json",
        compilerOptions: { noEmit: true, allowJs: true, checkJs: true },
        include: ["*.ts", "*.js"],
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
