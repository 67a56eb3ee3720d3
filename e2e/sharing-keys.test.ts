// Sharing keys with the real server process and the built CLI on real pseudo-terminals (docs/teams.md, "Sharing
// keys"): the first organisation command registers the machine's key (the password asked once, on a terminal
// only), and a second machine of the account is refused rather than overwrite it. `latchkey env
// rotate-sharing-key` shows what it drops, goes on only after the typed word ROTATE and the account's password,
// and leaves the server and the machine holding the same new key; any other word cancels with nothing changed on
// either side; without a terminal it is refused before anything happens. A stolen bearer token (a machine's access
// token, without the password) can neither set nor rotate a key through the API.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { generateX25519KeyPair, toBase64 } from "@latchkey/core";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requirePart } from "./support/prerequisites.js";
import { terminalCheck } from "./support/pty.js";
import {
  createUser,
  latchkey,
  startServerWithUser,
  type LatchkeyServer,
  type Machine,
} from "./support/latchkey-server.js";
import { ok, signedInMachine } from "./support/machines.js";
import { accessToken, apiRequest, mintProof } from "./support/pairing.js";
import {
  localKeyOf,
  rotateOnTerminal,
  serverKeyOf,
  sharingKeyAudit,
  ROTATE_PROMPT,
} from "./support/sharing-keys.js";
import { newMember, onTerminal, refused, userIdOf } from "./support/teams.js";

const USER = { email: "sharing-keys@example.com", password: "sharing keys password for e2e" };

describe.skipIf(!requirePart("the sharing-key e2e suite", terminalCheck()))("sharing keys", () => {
  let root: string;
  let server: LatchkeyServer;
  let m: Machine;
  let userId: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lk-e2e-sharing-keys-"));
    server = await startServerWithUser({ dataDir: join(root, "server") }, USER);
    userId = userIdOf(server, USER.email);
    m = await signedInMachine(root, "m", server, USER);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("rotate-sharing-key with the typed ROTATE and the password: both sides hold the same new key", async () => {
    const first = await rotateOnTerminal(m, { password: USER.password });
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain("Your account has no sharing key on");
    expect(first.output).toContain("Replaced your sharing key");
    const key1 = await localKeyOf(m);
    expect(key1).not.toBeNull();
    expect(serverKeyOf(server, userId)).toBe(key1);
    expect(await localKeyOf(m, true)).toBeNull();

    const second = await rotateOnTerminal(m, { password: USER.password });
    expect(second.code, second.output).toBe(0);
    expect(second.output).toContain(`(${key1!.slice(0, 16)}…, the one this machine holds)`);
    expect(second.output).toContain("No organisation has shared a vault with your current key");
    const key2 = await localKeyOf(m);
    expect(key2).not.toBe(key1);
    expect(serverKeyOf(server, userId)).toBe(key2);
    expect(await localKeyOf(m, true)).toBeNull();
    for (const output of [first.output, second.output]) expect(output).not.toContain(USER.password);

    const audit = sharingKeyAudit(server, userId);
    expect(audit.map((row) => row.action)).toEqual(["vault.public_key_rotated", "vault.public_key_rotated"]);
    expect(audit[1]!.metadata).toMatchObject({ fingerprint: key2, previousFingerprint: key1 });
  }, 120_000);

  it("any word but ROTATE cancels: exit 130, nothing changed on the server or the machine", async () => {
    const before = { local: await localKeyOf(m), server: serverKeyOf(server, userId) };
    const audited = sharingKeyAudit(server, userId).length;
    for (const word of ["rotate", "yes", ""]) {
      const cancelled = await rotateOnTerminal(m, { word, password: USER.password });
      expect(cancelled.code, cancelled.output).toBe(130);
      expect(cancelled.output).toContain("error LK_CANCELLED");
      expect(cancelled.output).toContain("nothing was changed");
      // It stopped before the step-up: no password was asked for.
      expect(cancelled.output).toContain(ROTATE_PROMPT);
      expect(cancelled.output).not.toContain("Password");
    }
    expect(await localKeyOf(m)).toBe(before.local);
    expect(await localKeyOf(m, true)).toBeNull();
    expect(serverKeyOf(server, userId)).toBe(before.server);
    expect(sharingKeyAudit(server, userId)).toHaveLength(audited);
  }, 120_000);

  it("the first organisation command registers the machine's key once; another machine is refused", async () => {
    const eve = await newMember(server, root, "eve", "sharing-eve@example.com");
    const eveId = userIdOf(server, eve.email);
    // A script cannot register a key: the password is asked on a terminal only.
    refused(await latchkey(eve.m, ["org", "list"]), "LK_NOT_INTERACTIVE");
    expect(serverKeyOf(server, eveId)).toBeNull();

    const first = await onTerminal(eve, ["org", "list"]);
    expect(first.code, first.output).toBe(0);
    expect(first.output).toContain("registering this machine's");
    expect(first.output.match(/confirm it is you/g)).toHaveLength(1);
    const key = await localKeyOf(eve.m);
    expect(key).not.toBeNull();
    expect(serverKeyOf(server, eveId)).toBe(key);
    expect(sharingKeyAudit(server, eveId)).toEqual([
      {
        action: "vault.public_key_set",
        metadata: expect.objectContaining({ fingerprint: key, stepUp: "password" }),
      },
    ]);
    // From now on it matches: no prompt, a script may run it.
    ok(await latchkey(eve.m, ["org", "list"]));

    // A second machine of the same account never overwrites the registered key on its own.
    const laptop = await signedInMachine(root, "eve-laptop", server, eve);
    const mismatch = refused(await latchkey(laptop, ["org", "list"]), "LK_SHARING_KEY_MISMATCH");
    expect(mismatch.stderr).toContain("latchkey env rotate-sharing-key");
    expect(await localKeyOf(laptop)).toBeNull();
    expect(serverKeyOf(server, eveId)).toBe(key);

    // Moving the key there is a rotation; then the first machine is the one refused.
    const moved = await rotateOnTerminal(laptop, { password: eve.password });
    expect(moved.code, moved.output).toBe(0);
    expect(moved.output).toContain("which this machine does not hold: another machine's");
    expect(serverKeyOf(server, eveId)).toBe(await localKeyOf(laptop));
    ok(await latchkey(laptop, ["org", "list"]));
    refused(await latchkey(eve.m, ["org", "list"]), "LK_SHARING_KEY_MISMATCH");
  }, 120_000);

  it("a stolen bearer token, without the password, can neither set nor rotate a sharing key", async () => {
    const victim = { email: "sharing-victim@example.com", password: "sharing victim password for e2e" };
    await createUser(server, victim.email, victim.password);
    const victimId = userIdOf(server, victim.email);
    const v = await signedInMachine(root, "victim", server, victim);
    const stolen = await accessToken(v, server);
    const planted = { publicKey: toBase64((await generateX25519KeyPair()).publicKey) };

    // The account has no key yet: the initial set is refused without a proof, or with one for another action.
    const tries = [
      { method: "PUT" as const, path: "/sharing-key", body: planted },
      { method: "POST" as const, path: "/sharing-key/rotate", body: planted },
      {
        method: "PUT" as const,
        path: "/sharing-key",
        body: planted,
        stepUp: await mintProof(server, await accessToken(m, server), "vault:public-key:set", USER.password),
      },
    ];
    for (const attempt of tries) {
      const refused = await apiRequest(server, stolen, attempt);
      expect(refused.status, JSON.stringify(refused.body)).toBe(403);
      expect(refused.body?.code).toBe("LK_STEP_UP_REQUIRED");
    }
    expect(serverKeyOf(server, victimId)).toBeNull();
    expect(sharingKeyAudit(server, victimId)).toEqual([]);

    // An account with a key: a stolen token cannot replace it either.
    const before = serverKeyOf(server, userId);
    const own = await accessToken(m, server);
    for (const attempt of tries.slice(0, 2)) {
      const refused = await apiRequest(server, own, attempt);
      expect(refused.status, JSON.stringify(refused.body)).toBe(403);
    }
    expect(serverKeyOf(server, userId)).toBe(before);
  }, 120_000);

  it("without a terminal it is refused (LK_NOT_INTERACTIVE) before anything changes", async () => {
    const before = serverKeyOf(server, userId);
    const refused = await latchkey(m, ["env", "rotate-sharing-key"], { input: "ROTATE\n" });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain("error LK_NOT_INTERACTIVE");
    expect(refused.stderr).toContain("no --yes");
    expect(serverKeyOf(server, userId)).toBe(before);
  }, 60_000);
});
