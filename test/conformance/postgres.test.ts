import { after, test } from "node:test";
import { openStore } from "../../src/index.js";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { leaseConformance } from "./leases-suite.js";
import { conformance, throughProxy } from "./suite.js";

if (!findPostgresBin()) {
  test("postgres store conformance", (t) =>
    skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"));
} else {
  // One server for both suites, stopped once every test of this file has run.
  let started: Promise<PostgresServer> | undefined;
  const shared = () => {
    started ??= PostgresServer.start();
    return started;
  };
  after(async () => {
    await (await started)?.close();
  });

  conformance("postgres", async () => {
    const server = await shared();
    const url = server.url("postgres", "table=clock_conf&timeout=5s");
    const raw = await server.client();
    await raw.query("CREATE TABLE clock_conf (id text PRIMARY KEY, time bigint NOT NULL)");
    // plantWrongType turns the column into text; reset turns it back.
    let textColumn = false;
    return {
      open: () => openStore(url),
      reset: async () => {
        await raw.query("DELETE FROM clock_conf");
        if (textColumn) {
          await raw.query(
            "ALTER TABLE clock_conf ALTER COLUMN time TYPE bigint USING time::bigint",
          );
          textColumn = false;
        }
      },
      plantWrongType: async () => {
        await raw.query("ALTER TABLE clock_conf ALTER COLUMN time TYPE text");
        textColumn = true;
        await raw.query("INSERT INTO clock_conf (id, time) VALUES ('g', 'twelve o''clock')");
      },
      plantNegative: async () => {
        await raw.query("INSERT INTO clock_conf (id, time) VALUES ('g', -5)");
      },
      raw: async () =>
        (
          await raw.query(
            "SELECT id, time::text AS time, pg_typeof(time)::text AS type FROM clock_conf ORDER BY id",
          )
        ).rows,
      breakable: () =>
        throughProxy(server.port, (port) =>
          url.replace(`:${server.port}/`, `:${port}/`).replace("timeout=5s", "timeout=1s"),
        ),
      close: async () => {
        await raw.end();
      },
    };
  });

  leaseConformance("postgres", async () => {
    const server = await shared();
    const url = server.url("postgres", "table=lease_conf&timeout=5s");
    const raw = await server.client();
    // The tables are made by the first writes; the harness plants rows in them.
    const makeTables = async () => {
      const first = await openStore(url);
      try {
        await first.ensure();
        await first.leases?.writeLease(
          { name: "-", holder: "", token: 0n, newToken: false, start: 0n, expiry: 0n, pins: [] },
          undefined,
        );
      } finally {
        await first.close();
      }
    };
    await makeTables();
    const exists = async (relation: string) =>
      (await raw.query("SELECT to_regclass($1) IS NOT NULL AS found", [relation])).rows[0].found;
    return {
      open: () => openStore(url),
      reset: async () => {
        if (!(await exists("lease_conf_leases"))) await makeTables(); // a test dropped it
        await raw.query("DELETE FROM lease_conf");
        await raw.query("DELETE FROM lease_conf_leases");
        await raw.query("DELETE FROM lease_conf_settings");
        // Emptied on purpose, the store starts its tokens anew.
        await raw.query("DROP SEQUENCE IF EXISTS lease_conf_tokens");
      },
      deleteClock: async () => {
        await raw.query("DELETE FROM lease_conf WHERE id = 'g'");
      },
      deleteMaxStep: async () => {
        await raw.query("DELETE FROM lease_conf_settings WHERE name = 'maxStep'");
      },
      deleteLease: async (name) => {
        await raw.query("DELETE FROM lease_conf_leases WHERE name = $1", [name]);
      },
      dropLeases: async () => {
        await raw.query("DROP TABLE lease_conf_leases");
      },
      plantCorruptLease: async (name) => {
        await raw.query(
          "INSERT INTO lease_conf_leases (name, holder, token, start, expiry, pins, version) VALUES ($1, 'alice', -1, 0, 5, '{}', 1)",
          [name],
        );
      },
      rawLease: async (name) =>
        (await raw.query("SELECT * FROM lease_conf_leases WHERE name = $1", [name])).rows[0],
      close: async () => {
        await raw.end();
      },
    };
  });
}
