// What `env push` checks before it talks to a server. The round trips themselves run against a real server in
// e2e/server-sync-*.test.ts.
import { randomFillSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { resolvePaths } from "../paths.js";
import { updateVault } from "../vault/vault-store.js";
import { pushVault } from "./push.js";

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

const VAULT_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

describe("env push", () => {
  it("refuses a vault over the size a server accepts with LK_VAULT_TOO_LARGE, before any request", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lk-push-"));
    dirs.push(dir);
    const env = { LATCHKEY_HOME: join(dir, "home"), LATCHKEY_VAULT_ID: VAULT_ID };
    const paths = resolvePaths(env);
    const keystore = createMemoryKeystore();
    const random = { bytes: (n: number) => randomFillSync(new Uint8Array(n)) };
    // fetch, the clock and the session store are left to throw: the push must stop before any of them.
    const ctx = createTestContext({
      env,
      cwd: dir,
      paths,
      random,
      keystore: () => Promise.resolve({ keystore } as KeystoreResolution),
    });
    // Written past `env set`'s own checks, as an older version or a pull from elsewhere could have left it.
    await updateVault({ keystore, home: paths.home, vaultsDir: paths.vaults, random }, VAULT_ID, (doc) => {
      for (const name of ["dev", "staging", "prod"])
        doc[name] = { A: "a".repeat(900_000), B: "b".repeat(900_000) };
      return { result: undefined, changed: true };
    });
    await expect(pushVault(ctx)).rejects.toMatchObject({
      code: "LK_VAULT_TOO_LARGE",
      message: expect.stringMatching(
        /^The vault would be 5,400,0\d\d bytes; a vault may be at most 5 MiB .* Nothing was sent\.$/,
      ),
    });
  });
});
