/** The `latchkey-server` entry: the real process, as run-process.ts wires it. */
import { runServerProcess } from "./run-process.js";

await runServerProcess();
