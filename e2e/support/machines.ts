// The machines of the server e2e suites: one signed in to the suite's server as its user, and the check that a
// CLI run on it succeeded.
import { expect } from "vitest";
import {
  loginCli,
  newMachine,
  type Credentials,
  type LatchkeyServer,
  type Machine,
  type ProcessResult,
} from "./latchkey-server.js";

/** Asserts that a command succeeded, showing its stderr otherwise; returns it. */
export function ok(result: ProcessResult): ProcessResult {
  expect(result.code, `exit ${result.code ?? result.signal}: ${result.stderr}`).toBe(0);
  return result;
}

/** A new machine `name` under `root` (newMachine), signed in to `server` as `user`. */
export async function signedInMachine(
  root: string,
  name: string,
  server: Pick<LatchkeyServer, "url">,
  user: Credentials,
): Promise<Machine> {
  const m = await newMachine(root, name);
  ok(await loginCli(m, server, user));
  return m;
}
