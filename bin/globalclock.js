#!/usr/bin/env node
import { main, warnOnOneLine } from "../dist/cli/main.js";

warnOnOneLine(process.argv.slice(2));
process.exitCode = await main(process.argv.slice(2));
