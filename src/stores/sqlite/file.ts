import { accessSync, constants, existsSync, lstatSync, realpathSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { StoreError } from "../../errors.js";

const KIND = "sqlite";
const warned = new Set<string>();

/**
 * Checks a database path before SQLite opens it, and returns the file to open:
 * - a symlink owned by another user is refused (as Linux's protected_symlinks does in
 *   sticky folders): it could point this process's writes at someone else's database;
 * - a reader never creates a file: a missing one is an error, not a clock at the epoch;
 * - permissions that SQLite would trip on are named with the path, its owner and mode, and
 *   this process's uid, before it opens anything;
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
    const dir = dirname(path);
    if (!existsSync(dir)) throw denied(`cannot create ${path}: the folder ${dir} does not exist`);
    if (!may(dir, constants.W_OK | constants.X_OK))
      throw denied(`cannot create ${path}: ${whoCannot(dir, "create files in")}`);
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
  checkPermissions(target, readOnly);
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

/**
 * The permissions SQLite needs, checked so that a refusal names the path, its owner and mode
 * and this process's uid, rather than "unable to open database file" or "attempt to write a
 * readonly database". In WAL mode the `-wal` and `-shm` files sit beside the database: a
 * writer needs them, and a reader needs `-shm` to exist or to be able to make it.
 */
function checkPermissions(file: string, readOnly: boolean): void {
  if (!may(file, constants.R_OK)) throw denied(`cannot read ${file}: ${whoCannot(file, "read")}`);
  if (!readOnly && !may(file, constants.W_OK))
    throw denied(`cannot write ${file}: ${whoCannot(file, "write")}`);
  const dir = dirname(file);
  if (may(dir, constants.W_OK | constants.X_OK)) return;
  const beside = readOnly ? ["-shm"] : ["-wal", "-shm"];
  const missing = beside.filter((suffix) => !existsSync(file + suffix));
  if (missing.length === 0) return;
  throw denied(
    `cannot ${readOnly ? "read" : "write"} ${file}: SQLite needs ${missing.map((m) => file + m).join(" and ")} beside it (none is there: no worker has it open), and ${whoCannot(dir, "create files in")}; ${readOnly ? "read it while a worker runs, or " : ""}run as a user who may`,
  );
}

function may(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

/** "uid 65534 may not write it (owner uid 0, mode 0644)". */
function whoCannot(path: string, verb: string): string {
  const me = process.getuid?.();
  let owner = "";
  try {
    const st = statSync(path);
    owner = ` (${path} is owned by uid ${st.uid}, group ${st.gid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`;
  } catch {
    // unreadable metadata: the message says what it can
  }
  return `${me === undefined ? "this process" : `uid ${me}`} may not ${verb} it${owner}`;
}

function denied(message: string): StoreError {
  return new StoreError(KIND, "open", message, { retryable: false });
}

function openError(path: string, err: unknown): StoreError {
  return new StoreError(KIND, "open", `cannot open ${path}: ${(err as Error).message}`, {
    cause: err,
    retryable: false,
  });
}
