/**
 * The memory baseline beside an idle daemon: a bare Node process that loads one driver,
 * opens one connection, uses it once, and idles until its stdin closes. Plain JavaScript,
 * so that no loader weighs on it: `node bench/memory-baseline.mjs <driver> <target>`, where
 * the target is a file (better-sqlite3), a URL (pg, mongodb) or host:port,… (etcd3).
 */
const [driver, target = ""] = process.argv.slice(2);

async function open() {
  switch (driver) {
    case "better-sqlite3": {
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(target);
      db.prepare("SELECT 1").get();
      return db;
    }
    case "pg": {
      const { default: pg } = await import("pg");
      const client = new pg.Client({ connectionString: target });
      await client.connect();
      await client.query("SELECT 1");
      return client;
    }
    case "etcd3": {
      const { Etcd3 } = await import("etcd3");
      const client = new Etcd3({ hosts: target.split(",").map((h) => `http://${h}`) });
      await client.get("/");
      return client;
    }
    case "mongodb": {
      const { MongoClient } = await import("mongodb");
      const client = new MongoClient(target);
      await client.connect();
      await client.db("admin").command({ ping: 1 });
      return client;
    }
    default:
      throw new Error(`unknown driver ${driver}`);
  }
}

// Held in module scope, so it lives as long as the process.
export const connection = await open();
process.stdout.write("ready\n");
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
