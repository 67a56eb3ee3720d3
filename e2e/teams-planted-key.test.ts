// A server that plants an organisation vault key (docs/teams.md, "Who wrapped a key"), with the real server process
// on SQLite and on PostgreSQL and the built CLI. The test plays the malicious server by writing its database: it
// can put any wrapped key in a member's `vault_org_keys` row (wrapping needs only the member's public key) and any
// blob in the copy's head. After a genuine share and pull, the member's `env pull --org` refuses (a) a key the
// server wrapped from its own key pair, named as the maintainer's with the server's public key; (b) the same
// named with the maintainer's real key; (c) after a removal and a rotation, the old genuine key put back with a
// blob the removed member sealed under the old vault key. Each leaves the member's machine and checkout as they
// were. (d) A first pull of a copy wrapped by someone the machine has never seen needs a person (the prompt shows
// the sharer's email, role and fingerprint; yes pins it) or --trust-new-members.
import { randomBytes } from "node:crypto";
import {
  generateX25519KeyPair,
  orgVaultKeyContext,
  sealEnvelope,
  syncBlobContext,
  toBase64,
  utf8Encode,
  wrapKeyForRecipient,
  wrapKeyFromSender,
} from "@latchkey/core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openDatabase, type OpenDatabase } from "../packages/server/src/db/index.js";
import { describeEachDatabase } from "../packages/server/test/databases.js";
import { requirePart } from "./support/prerequisites.js";
import { startOnTerminal, terminalCheck, KEYS } from "./support/pty.js";
import { snapshot } from "./support/project.js";
import {
  CLI_BIN,
  latchkey,
  startLatchkeyServer,
  tempDir,
  type LatchkeyServer,
} from "./support/latchkey-server.js";
import {
  addMember,
  latchkeyJsonOf,
  newMember,
  ok,
  onTerminal,
  projectDir,
  refused,
  registerSharingKey,
  secretsOf,
  sharingKeyPair,
  unwrapFor,
  type Member,
} from "./support/teams.js";

const SECRETS = { API_KEY: "sk-planted-41c7", DATABASE_URL: "postgres://app:pw-90ab@db.internal/app" };
const ATTACKERS = { API_KEY: "sk-attacker", DATABASE_URL: "postgres://app:pw@attacker.example/app" };

/** A member's wrapped-key row as the server stores it. */
interface KeyRow {
  wrapped_key: string;
  key_fingerprint: string;
  wrapped_by: string | null;
  wrapped_by_key: string | null;
  key_version: number | null;
}

if (requirePart("the planted organisation key e2e suite", terminalCheck())) {
  describeEachDatabase("a planted organisation vault key", (target) => {
    let root: { path: string; cleanup: () => Promise<void> };
    let server: LatchkeyServer;
    let database: OpenDatabase;
    let ann: Member;
    let bob: Member;
    let cid: Member;
    let aDir: string;
    let bDir: string;
    let vaultId: string;
    let orgId: string;

    beforeAll(async () => {
      const config = await target.fresh();
      root = await tempDir("lk-e2e-planted-");
      server = await startLatchkeyServer({
        dataDir: config.dataDir,
        ...(config.databaseUrl === undefined ? {} : { databaseUrl: config.databaseUrl }),
      });
      database = await openDatabase(config);
      ann = await newMember(server, root.path, "ann", "ann@planted.example");
      bob = await newMember(server, root.path, "bob", "bob@planted.example");
      cid = await newMember(server, root.path, "cid", "cid@planted.example");
      const created = await onTerminal(ann, ["org", "create", "acme"]);
      expect(created.code, created.output).toBe(0);
      for (const member of [bob, cid]) {
        await registerSharingKey(member);
        await addMember(ann, "acme", member.email, "member");
      }
      aDir = await projectDir(root.path, "app-ann", "app");
      const dotenv = Object.entries(SECRETS)
        .map(([key, value]) => `${key}=${value}\n`)
        .join("");
      ok(await latchkey(ann.m, ["env", "import", "-"], { cwd: aDir, input: dotenv }));
      ok(await latchkey(ann.m, ["env", "share", "--org", "acme", "--trust-new-members"], { cwd: aDir }));
      vaultId = (JSON.parse(await latchkeyJsonOf(aDir)) as { vault: string }).vault;
      bDir = await projectDir(root.path, "app-bob", "app", await latchkeyJsonOf(aDir));
      orgId = (
        await database.db.selectFrom("orgs").select("id").where("slug", "=", "acme").executeTakeFirstOrThrow()
      ).id;
    }, 240_000);
    afterAll(async () => {
      await database?.close();
      await server?.stop();
      await root?.cleanup();
    });

    const userId = async (member: Member) =>
      (
        await database.db
          .selectFrom("users")
          .select("id")
          .where("email", "=", member.email)
          .executeTakeFirstOrThrow()
      ).id;
    const head = () =>
      database.db
        .selectFrom("org_vault_heads")
        .select(["version", "encrypted_blob"])
        .where("org_id", "=", orgId)
        .where("vault_id", "=", vaultId)
        .executeTakeFirstOrThrow()
        .then((h) => ({ version: Number(h.version), encrypted_blob: h.encrypted_blob }));
    const keyRow = async (member: Member): Promise<KeyRow> => {
      const row = await database.db
        .selectFrom("vault_org_keys")
        .select(["wrapped_key", "key_fingerprint", "wrapped_by", "wrapped_by_key", "key_version"])
        .where("org_id", "=", orgId)
        .where("vault_id", "=", vaultId)
        .where("user_id", "=", await userId(member))
        .executeTakeFirstOrThrow();
      return { ...row, key_version: row.key_version === null ? null : Number(row.key_version) };
    };
    /** What the malicious server serves: the copy's head, and the member's wrapped-key row. */
    const serve = async (member: Member, copy: { version: number; encrypted_blob: string }, key: KeyRow) => {
      await database.db
        .updateTable("org_vault_heads")
        .set(copy)
        .where("org_id", "=", orgId)
        .where("vault_id", "=", vaultId)
        .execute();
      await database.db
        .updateTable("vault_org_keys")
        .set(key)
        .where("org_id", "=", orgId)
        .where("vault_id", "=", vaultId)
        .where("user_id", "=", await userId(member))
        .execute();
    };
    /** A blob of the attacker's "secrets", sealed with `vaultKey` as `version` of the copy. */
    const attackersBlob = async (vaultKey: Uint8Array, version: number) =>
      toBase64(
        await sealEnvelope(
          vaultKey,
          utf8Encode(JSON.stringify({ default: ATTACKERS })),
          syncBlobContext(vaultId, version, "acme"),
        ),
      );
    /** Everything the member's machine and checkout hold: a refused pull must change none of it. */
    const holdings = async (member: Member, dir: string) => ({
      home: await snapshot(member.m.latchkeyHome),
      checkout: await snapshot(dir),
    });
    const fingerprintOf = async (member: Member) =>
      (
        JSON.parse(ok(await latchkey(member.m, ["org", "members", "acme", "--json"])).stdout) as {
          thisMachineFingerprint: string;
        }
      ).thisMachineFingerprint;
    const pinOf = async (by: Member, member: Member) =>
      (
        JSON.parse(ok(await latchkey(by.m, ["org", "members", "acme", "--json"])).stdout) as {
          members: { email: string; pin: string | null }[];
        }
      ).members.find((m) => m.email === member.email)?.pin;

    it("(d) a first pull of a key wrapped by someone new: refused without a terminal; on one, shown and pinned by yes", async () => {
      const annsFingerprint = await fingerprintOf(ann);
      const untrusted = refused(
        await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }),
        "LK_ORG_MEMBER_UNTRUSTED",
      );
      expect(untrusted.stderr).toContain(`${ann.email}  owner  ${annsFingerprint}`);
      expect(untrusted.stderr).toContain("--trust-new-members");
      expect(await pinOf(bob, ann)).toBe("new");
      refused(await latchkey(bob.m, ["env", "export"], { cwd: bDir }), "LK_ORG_VAULT_NOT_SYNCED");

      const terminal = startOnTerminal(process.execPath, [CLI_BIN, "env", "pull", "--org", "acme"], {
        env: bob.m.env,
        cwd: bDir,
        columns: 200,
      });
      await terminal.waitFor("Trust this key and open what it wrapped?");
      expect(terminal.output()).toContain(`${ann.email}  owner  ${annsFingerprint}`);
      terminal.type(`y${KEYS.enter}`);
      const pulled = await terminal.exited;
      expect(pulled.code, pulled.output).toBe(0);
      expect(await secretsOf(bob, bDir)).toEqual(SECRETS);
      expect(await pinOf(bob, ann)).toBe("pinned");
      // Pinned: the next pull needs neither terminal nor flag.
      ok(await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }));
    }, 120_000);

    it("(a, b) a key the server wrapped itself is refused, named with its own key or the maintainer's", async () => {
      const genuine = { head: await head(), key: await keyRow(bob) };
      const before = await holdings(bob, bDir);
      const attacker = await generateX25519KeyPair();
      const planted = new Uint8Array(randomBytes(32));
      const next = genuine.head.version + 1;
      const copy = { version: next, encrypted_blob: await attackersBlob(planted, next) };
      const bobsKey = (await sharingKeyPair(bob)).publicKey;
      // Both forms the server can make: the plain one every key had before (no sharer at all), and one from its
      // own key pair for this very copy and key version.
      const forms = [
        await wrapKeyForRecipient(planted, bobsKey),
        await wrapKeyFromSender(planted, bobsKey, attacker, orgVaultKeyContext(vaultId, "acme", next)),
      ];
      try {
        for (const wrapped_key of forms) {
          // (a) Named as ann's, with the server's own public key: not the key bob's machine pinned for her.
          await serve(bob, copy, {
            ...genuine.key,
            wrapped_key,
            wrapped_by_key: toBase64(attacker.publicKey),
            key_version: next,
          });
          const changed = refused(
            await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }),
            "LK_ORG_MEMBER_KEY_CHANGED",
          );
          expect(changed.stderr).toContain(`latchkey org trust acme ${ann.email} FINGERPRINT`);
          expect(await holdings(bob, bDir)).toEqual(before);
          // (b) Named with ann's real key: it does not open from it.
          await serve(bob, copy, { ...genuine.key, wrapped_key, key_version: next });
          refused(
            await latchkey(bob.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: bDir }),
            "LK_VAULT_DECRYPT_FAILED",
          );
          expect(await holdings(bob, bDir)).toEqual(before);
        }
      } finally {
        await serve(bob, genuine.head, genuine.key);
      }
      expect(await secretsOf(bob, bDir)).toEqual(SECRETS);
      // The genuine copy back: it opens as before.
      ok(await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }));
      expect(await secretsOf(bob, bDir)).toEqual(SECRETS);
    }, 120_000);

    it("(c) after a removal and its rotation, the old genuine key put back with the leaver's blob is a rollback", async () => {
      const cDir = await projectDir(root.path, "app-cid", "app", await latchkeyJsonOf(aDir));
      ok(await latchkey(cid.m, ["env", "pull", "--org", "acme", "--trust-new-members"], { cwd: cDir }));
      // What the server and cid keep from before the rotation: bob's genuine row, and the vault key cid opens.
      const old = await keyRow(bob);
      const cids = await keyRow(cid);
      const oldKey = await unwrapFor(
        { wrappedKey: cids.wrapped_key, wrappedByKey: cids.wrapped_by_key!, keyVersion: cids.key_version! },
        await sharingKeyPair(cid),
        vaultId,
        "acme",
      );
      const removal = await onTerminal(ann, ["org", "remove", "acme", cid.email]);
      expect(removal.code, removal.output).toBe(0);
      const rotated = await head();
      expect((await keyRow(bob)).key_version).toBe(rotated.version);
      ok(await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }));
      const before = await holdings(bob, bDir);

      // cid seals the next version with the old key; the server serves it with bob's old genuine row.
      const next = rotated.version + 1;
      const replay = { version: next, encrypted_blob: await attackersBlob(oldKey, next) };
      await serve(bob, replay, old);
      const rollback = refused(
        await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }),
        "LK_VAULT_ROLLBACK",
      );
      expect(rollback.stderr).toContain(`the vault key of version ${old.key_version}`);
      expect(await holdings(bob, bDir)).toEqual(before);
      // Answered as a newer key version, the old wrap does not open: the version is part of what was wrapped.
      await serve(bob, replay, { ...old, key_version: next });
      refused(
        await latchkey(bob.m, ["env", "pull", "--org", "acme"], { cwd: bDir }),
        "LK_VAULT_DECRYPT_FAILED",
      );
      expect(await holdings(bob, bDir)).toEqual(before);
      expect(await secretsOf(bob, bDir)).toEqual(SECRETS);
    }, 180_000);
  });
}
