import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { describe as describeError, quote, redact, safeUrl, urlSecrets } from "../../src/errors.js";
import {
  ClosedError,
  ConcurrentUseError,
  ConfigError,
  CorruptRecordError,
  GlobalClockError,
  InvalidDurationError,
  InvalidUpdaterError,
  OutOfSyncUpdateError,
  StoreError,
} from "../../src/index.js";
import { describeValue } from "../../src/record.js";

describe("redact", () => {
  const cases: Array<[string, string]> = [
    ["postgres://user:secret@host/db", "postgres://user:***@host/db"],
    ["POSTGRES://U:secret@H", "POSTGRES://U:***@H"],
    ["mongodb://u:p%40ss@h1,h2/db?x=1", "mongodb://u:***@h1,h2/db?x=1"],
    ["etcd://:secret@h:2379", "etcd://:***@h:2379"],
    ["foo://user:secret@host/", "foo://user:***@host/"],
    [
      "failed: postgres://a:secret@c and mongodb+srv://x:secret@z",
      "failed: postgres://a:***@c and mongodb+srv://x:***@z",
    ],
    ['open "postgres://u:secret@h:5432/db" failed', 'open "postgres://u:***@h:5432/db" failed'],
    // characters a careless URL leaves unencoded in the password
    ["postgres://user:sec@ret@host/db", "postgres://user:***@host/db"],
    ["postgres://user:se:cret@host", "postgres://user:***@host"],
    ["postgres://user:se/cret@host/db", "postgres://user:***@host/db"],
    ["postgres://user:se?cr#et@host/db", "postgres://user:***@host/db"],
    // a password given as a parameter
    ["postgres://host/db?password=secret&ssl=1", "postgres://host/db?password=***&ssl=1"],
    ["postgres://host/db?user=u&PASSWORD=secret", "postgres://host/db?user=u&PASSWORD=***"],
    // nothing to hide: a usage hint's placeholder
    [
      "use postgres://user:password@host:port/database",
      "use postgres://user:password@host:port/database",
    ],
    ["use etcd://[user:password@]host:port", "use etcd://[user:password@]host:port"],
    // nothing to hide
    ["postgres://user@host/db", "postgres://user@host/db"],
    ["etcd://h1:2379,h2:2379", "etcd://h1:2379,h2:2379"],
    ["sqlite:./globalclock.db", "sqlite:./globalclock.db"],
    ["no url here: user@example", "no url here: user@example"],
  ];
  for (const [text, expected] of cases) {
    test(JSON.stringify(text), () => assert.equal(redact(text), expected));
  }

  test("no password of printable characters survives in a URL's user info", () => {
    const chars = fc.constantFrom(..."abcXYZ019@:/?#%&=!$*+,;-._~'()[]".split(""));
    const password = fc.string({ unit: chars, minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(password, fc.constantFrom("postgres", "mongodb", "etcd", "foo"), (pw, scheme) => {
        const url = `${scheme}://user:Q7K${pw}@db.example:5432/clock?ssl=1`;
        const shown = redact(`cannot connect to ${url}: refused`);
        assert.ok(!shown.includes("Q7K"), shown);
        assert.ok(shown.startsWith(`cannot connect to ${scheme}://user:***@`), shown);
      }),
    );
  });
});

describe("safeUrl: a whole URL, parsed", () => {
  const cases: Array<[string, string]> = [
    // passwords with spaces, which no whitespace-bounded pattern can find the end of
    ["postgres://u:abc def@h:5432/db", "postgres://u:***@h:5432/db"],
    ["etcd://root:sec ret@127.0.0.1:2379", "etcd://root:***@127.0.0.1:2379"],
    ["postgres://h/db?password=ab cd&ssl=1", "postgres://h/db?password=***&ssl=1"],
    [
      "mongodb://h/?tlsCertificateKeyFilePassword=x y",
      "mongodb://h/?tlsCertificateKeyFilePassword=***",
    ],
    ["postgres://u:p@ss w/rd@h/db", "postgres://u:***@h/db"],
    ["postgres://u@h/db", "postgres://u@h/db"],
    ["sqlite:./globalclock.db", "sqlite:./globalclock.db"],
  ];
  for (const [url, expected] of cases) {
    test(JSON.stringify(url), () => assert.equal(safeUrl(url), expected));
  }

  test("a malformed URL's hint shows its placeholder, never the password given", () => {
    const url = "postgres://user:hunter22@host:99999/db";
    const shown = redact(
      `malformed PostgreSQL URL "${safeUrl(url)}": use postgres://user:password@host:port/database`,
      urlSecrets(url),
    );
    assert.equal(
      shown,
      'malformed PostgreSQL URL "postgres://user:***@host:99999/db": use postgres://user:password@host:port/database',
    );
    const literal = "postgres://user:password@host:99999/db";
    assert.ok(!redact(`${literal} failed`, urlSecrets(literal)).includes(":password@"));
  });

  test("the secrets a URL carries mask them anywhere in a message", () => {
    const url = "postgres://u:abc def@h/db?sslpassword=k%20ey";
    assert.deepEqual(urlSecrets(url).sort(), ["abc def", "k ey", "k%20ey"]);
    const message = `password authentication failed for "u" (abc def) at ${url}`;
    const shown = redact(message, urlSecrets(url));
    assert.ok(!/abc|def|k ey|k%20ey/.test(shown), shown);
  });
});

describe("quote: bad input in a message", () => {
  test("at most 100 characters, the rest counted", () => {
    const shown = quote("x".repeat(250));
    assert.equal(shown, `"${"x".repeat(100)}"… (150 more characters)`);
  });
  test("control and invisible characters escaped, never sent to a terminal", () => {
    assert.equal(quote("a\x1b[31mred\x07\n\u202e"), '"a\\x1b[31mred\\x07\\x0a\\u{202e}"');
    assert.equal(quote('say "hi"\\'), '"say \\"hi\\"\\\\"');
  });
  test("a blob record is shown as a few bytes of hex", () => {
    const blob = Buffer.from("\x1b]0;pwned\x07".repeat(10));
    const shown = describeValue(blob);
    assert.match(shown, /^a blob of 100 bytes \(1b5d303b70776e6564071b5d303b7077…\)$/);
    assert.ok(!shown.includes("\x1b"));
  });
});

describe("the error hierarchy", () => {
  const cause = new Error("socket hang up");
  const errors: Array<[GlobalClockError, string]> = [
    [new OutOfSyncUpdateError(1n, 2n), "OutOfSyncUpdateError"],
    [new InvalidUpdaterError(cause), "InvalidUpdaterError"],
    [new ConcurrentUseError("advance"), "ConcurrentUseError"],
    [new ClosedError("updater"), "ClosedError"],
    [new ConfigError("store", "missing store"), "ConfigError"],
    [new InvalidDurationError("interval", "invalid interval"), "InvalidDurationError"],
    [new StoreError("sqlite", "read", "disk I/O error", { cause }), "StoreError"],
    [new CorruptRecordError("sqlite", "read", "time is a string"), "CorruptRecordError"],
  ];
  for (const [err, name] of errors) {
    test(`${name} is a GlobalClockError with its name set`, () => {
      assert.ok(err instanceof GlobalClockError);
      assert.ok(err instanceof Error);
      assert.equal(err.name, name);
      assert.match(String(err), new RegExp(`^${name}: `));
    });
  }

  test("the details a caller needs are kept", () => {
    const out = new OutOfSyncUpdateError(5n, 9n);
    assert.equal(out.expected, 5n);
    assert.equal(out.actual, 9n);
    const invalid = new InvalidUpdaterError(cause);
    assert.equal(invalid.cause, cause);
    assert.match(invalid.message, /socket hang up; create a new updater/);
    const store = new StoreError("postgres", "compareAndSwap", "timeout", { cause });
    assert.equal(store.store, "postgres");
    assert.equal(store.operation, "compareAndSwap");
    assert.equal(store.cause, cause);
    assert.equal(store.message, "postgres store: compareAndSwap failed: timeout");
    const corrupt = new CorruptRecordError("memory", "read", "time is negative (-5)");
    assert.ok(corrupt instanceof StoreError);
    assert.match(corrupt.message, /left untouched/);
    const duration = new InvalidDurationError("interval", "bad");
    assert.ok(duration instanceof ConfigError);
    assert.equal(duration.field, "interval");
  });

  test("describe gives one line for anything thrown", () => {
    assert.equal(describeError(new Error("boom")), "boom");
    assert.equal(describeError(new TypeError("")), "TypeError");
    assert.equal(describeError("plain"), "plain");
    assert.equal(describeError(42), "42");
  });
});
