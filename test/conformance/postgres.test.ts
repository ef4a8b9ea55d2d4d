import { test } from "node:test";
import { openStore } from "../../src/index.js";
import { skipOrFail } from "../helpers/env.js";
import { findPostgresBin, PostgresServer } from "../helpers/postgres-server.js";
import { tcpProxy } from "../helpers/server-process.js";
import { conformance } from "./suite.js";

if (!findPostgresBin()) {
  test("postgres store conformance", (t) =>
    skipOrFail(t, "no PostgreSQL under /usr/lib/postgresql/*/bin (apt-get install postgresql)"));
} else {
  conformance("postgres", async () => {
    const server = await PostgresServer.start();
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
      breakable: async () => {
        const proxy = await tcpProxy(server.port);
        const store = await openStore(
          url.replace(`:${server.port}/`, `:${proxy.port}/`).replace("timeout=5s", "timeout=1s"),
        );
        return {
          store,
          cut: proxy.cut,
          close: async () => {
            await store.close();
            await proxy.close();
          },
        };
      },
      close: async () => {
        await raw.end();
        await server.close();
      },
    };
  });
}
