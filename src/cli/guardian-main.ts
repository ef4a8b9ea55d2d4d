// The guardian process that `globalclock lock` starts (see guardian.ts).
import { runGuardian } from "./guardian.js";

runGuardian();
