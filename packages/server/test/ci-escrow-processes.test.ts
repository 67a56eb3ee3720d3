// The escrow key of server processes sharing one database (docs/ci.md "Escrow"): the first process records its key's
// fingerprint, a process with another key refuses to start with a message that says what to do, and one with the
// same key starts. Runs the built server (npm run build), on SQLite (one data directory) and PostgreSQL (two).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { describeEachDatabase } from "./databases.js";
import { startServerProcess, type ServerProcess } from "./sync-support.js";
import { TEST_SERVER_SECRET } from "./support/identity.js";

const running: ServerProcess[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(running.splice(0).map((server) => server.stop()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describeEachDatabase("escrow key of processes on one database", (target) => {
  it("refuses to start a second process whose escrow key is another, and starts one with the same key", async () => {
    const config = await target.fresh();
    const key = randomBytes(32).toString("base64");
    const env = (escrowKey: string) => ({
      ...target.env(config),
      LATCHKEY_SERVER_SECRET: TEST_SERVER_SECRET,
      LATCHKEY_ESCROW_KEY: escrowKey,
    });
    // On PostgreSQL each process may have its own data directory: only the database is shared.
    const dataDir = async (): Promise<string> => {
      if (target.kind === "sqlite") return config.dataDir;
      const dir = await mkdtemp(join(tmpdir(), "lk-escrow-"));
      dirs.push(dir);
      return dir;
    };

    const first = await startServerProcess(await dataDir(), env(key));
    running.push(first);
    const other = randomBytes(32).toString("base64");
    const refused = await startServerProcess(await dataDir(), env(other)).then(
      (server) => {
        running.push(server);
        return "listening";
      },
      (error: unknown) => String(error),
    );
    // LK_CONFIG_INVALID's exit code: the configuration is wrong.
    expect(refused).toContain("exited (2) before listening");
    expect(refused).toContain("every process must use the same LATCHKEY_ESCROW_KEY");
    // Neither key is ever written to the output; the log names the start of the fingerprint only.
    for (const output of [first.output(), refused]) {
      expect(output).not.toContain(key);
      expect(output).not.toContain(other);
    }

    const same = await startServerProcess(await dataDir(), env(key));
    running.push(same);
    expect(same.output()).toContain('"event":"server.listening"');
  });
});
