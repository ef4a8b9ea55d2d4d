/**
 * The least string above every string that starts with `prefix`, in code point order (the
 * byte order of UTF-8, which SQLite's BINARY and PostgreSQL's "C" collation compare by), or
 * undefined when there is none. So `name >= prefix AND name < prefixEnd(prefix)` selects
 * the names with that prefix as a range of an index, with no LIKE and no escaping.
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix];
  while (points.length > 0) {
    let next = (points.pop()?.codePointAt(0) as number) + 1;
    if (next === 0xd800) next = 0xe000; // surrogates are not characters: skip them
    if (next <= 0x10ffff) return points.join("") + String.fromCodePoint(next);
  }
  return undefined;
}
