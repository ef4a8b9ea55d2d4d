import { lstatSync, realpathSync, statSync } from "node:fs";
import { StoreError } from "../../errors.js";

const KIND = "sqlite";
const warned = new Set<string>();

/**
 * Checks a database path before SQLite opens it, and returns the file to open:
 * - a symlink owned by another user is refused (as Linux's protected_symlinks does in
 *   sticky folders): it could point this process's writes at someone else's database;
 * - a reader never creates a file: a missing one is an error, not a clock at the epoch;
 * - a file owned by another user, or writable by group or others, is opened with a
 *   warning (a clock shared between users needs that, but its owner should know).
 */
export function checkDatabaseFile(path: string, readOnly: boolean): string {
  let link: ReturnType<typeof lstatSync> | undefined;
  try {
    link = lstatSync(path);
  } catch (err) {
    if ((err as { code?: unknown }).code !== "ENOENT") throw openError(path, err);
  }
  if (!link) {
    if (readOnly) {
      throw new StoreError(
        KIND,
        "open",
        `no database at ${path}: a reader never creates one (is the path right? \`globalclock run\` creates it)`,
        { retryable: false },
      );
    }
    return path; // a writer creates it
  }
  const me = process.getuid?.();
  if (link.isSymbolicLink() && me !== undefined && link.uid !== me && link.uid !== 0) {
    throw new StoreError(
      KIND,
      "open",
      `${path} is a symbolic link owned by another user (uid ${link.uid}); refusing to follow it: open the file it points to by its own path if it is the clock you mean`,
      { retryable: false },
    );
  }
  let target = path;
  try {
    target = realpathSync(path);
  } catch (err) {
    throw openError(path, err);
  }
  const file = statSync(target);
  const problems: string[] = [];
  if (me !== undefined && file.uid !== me)
    problems.push(`is owned by another user (uid ${file.uid})`);
  if (file.mode & 0o022) problems.push("is writable by its group or by others");
  if (problems.length > 0 && !warned.has(target)) {
    warned.add(target);
    process.emitWarning(
      `the clock database ${target} ${problems.join(" and ")}: whoever can write it can set global time`,
      { code: "GLOBALCLOCK_SHARED_DATABASE" },
    );
  }
  return target;
}

function openError(path: string, err: unknown): StoreError {
  return new StoreError(KIND, "open", `cannot open ${path}: ${(err as Error).message}`, {
    cause: err,
    retryable: false,
  });
}
