/**
 * Runs the MongoDB wire-protocol test double in a process of its own, so that serving
 * the driver does not share the benchmark's event loop (a real mongod would not either).
 * Prints one JSON line `{ "uri": … }` once listening; stops when stdin closes.
 */
import { MongoDouble } from "../test/mongo-double/server.js";

const double = await MongoDouble.start(process.argv[2] ? { replicaSet: process.argv[2] } : {});
process.stdout.write(`${JSON.stringify({ uri: double.uri() })}\n`);
process.stdin.resume();
process.stdin.on("end", () => {
  void double.close().then(() => process.exit(0));
});
