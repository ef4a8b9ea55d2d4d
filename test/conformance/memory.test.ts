import { MemoryStore } from "../../src/index.js";
import { memoryCell } from "../../src/stores/memory/index.js";
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
    close: async () => {},
  };
});
