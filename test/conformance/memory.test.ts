import { MemoryStore } from "../../src/index.js";
import { memoryCell } from "../../src/stores/memory/index.js";
import { leaseConformance } from "./leases-suite.js";
import { conformance } from "./suite.js";

let n = 0;
conformance("memory", async () => {
  const name = `conformance-${process.pid}-${n++}`;
  const cell = memoryCell(name);
  return {
    open: async () => new MemoryStore(name),
    reset: async () => {
      cell.value = undefined;
    },
    plantWrongType: async () => {
      cell.value = "12:00";
    },
    plantNegative: async () => {
      cell.value = -5n;
    },
    raw: async () => cell.value,
    // No connection to cut: what breaks is the cell itself, every read or write of its
    // record throwing as a failed backend would, which the store must report as it reports
    // any failure. Nothing in a process's memory heals by itself, so none is retryable.
    breakable: async () => {
      const store = new MemoryStore(name);
      const cut = () => {
        throw new Error("the cell is unreachable (cut by the test)");
      };
      return {
        store,
        cut: async () => {
          Object.defineProperty(cell, "value", { get: cut, set: cut, configurable: true });
        },
        close: async () => {
          Object.defineProperty(cell, "value", {
            value: undefined,
            writable: true,
            enumerable: true,
            configurable: true,
          });
          await store.close();
        },
        retryable: false,
      };
    },
    close: async () => {},
  };
});

leaseConformance("memory", async () => {
  const name = `lease-conformance-${process.pid}-${n++}`;
  const cell = memoryCell(name);
  return {
    open: async () => new MemoryStore(name),
    reset: async () => {
      cell.value = undefined;
      cell.maxStep = undefined;
      cell.leases.clear();
      cell.lastToken = 0n;
    },
    deleteClock: async () => {
      cell.value = undefined;
    },
    deleteMaxStep: async () => {
      cell.maxStep = undefined;
    },
    deleteLease: async (lease) => {
      cell.leases.delete(lease);
    },
    dropLeases: async () => {
      cell.leases.clear();
    },
    plantCorruptLease: async (lease) => {
      cell.leases.set(lease, {
        name: lease,
        holder: "alice",
        token: -1n,
        start: 0n,
        expiry: 5n,
        pins: [],
        version: 1n,
      });
    },
    rawLease: async (lease) => structuredClone(cell.leases.get(lease)),
    close: async () => {},
  };
});
