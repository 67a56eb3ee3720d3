// The machines of the server e2e suites: one signed in to the suite's server as its user, a copy of another (its
// keys, as if paired), and the check that a CLI run on one succeeded.
import { cp, rm } from "node:fs/promises";
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

/**
 * A new machine `name` under `root` holding a copy of `of`'s LATCHKEY_HOME: its wrapping key, as a machine paired
 * with it has, and its session (sign in again for a grant of its own).
 */
export async function copyOfMachine(root: string, name: string, of: Machine): Promise<Machine> {
  const m = await newMachine(root, name);
  await rm(m.latchkeyHome, { recursive: true });
  await cp(of.latchkeyHome, m.latchkeyHome, { recursive: true });
  return m;
}
