// Opening vault copies in the browser with the keys a pairing handed over: a personal copy as the CLI pushes it
// (the vault key wrapped under vaultKeyContext, the blob under syncBlobContext) and an organisation copy as a
// share makes it (wrapKeyFromSender under orgVaultKeyContext), with the browser's rule for sharers (no pins: the
// account itself with the sharing key it holds, or a current owner or maintainer whose registered key wrapped it).
import {
  generateX25519KeyPair,
  isLatchkeyError,
  orgVaultKeyContext,
  randomKey,
  sealEnvelope,
  sharingKeyFingerprint,
  syncBlobContext,
  toBase64,
  utf8Encode,
  vaultKeyContext,
  wrapKeyFromSender,
  type OrgMemberDetail,
  type OrgPullResponse,
  type PullResponse,
  type X25519KeyPair,
} from "@latchkey/core";
import { beforeEach, describe, expect, it } from "vitest";
import { dropKeys, heldKeys, holdPairingKeys, openOrgCopy, openPersonalCopy } from "./unlock.js";

const ME = "0b6f5c1e-4a6b-4d1c-9d2e-000000000001";
const ALICE = "0b6f5c1e-4a6b-4d1c-9d2e-000000000002";
const VAULT = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
const DOCUMENT = { default: { API_TOKEN: "canary-value-1" }, prod: { DB_URL: "postgres://x" } };

async function personalCopy(wrappingKey: Uint8Array, version: number): Promise<PullResponse> {
  const vaultKey = randomKey();
  return {
    vaultId: VAULT,
    version,
    wrappedKey: toBase64(await sealEnvelope(wrappingKey, vaultKey, vaultKeyContext(VAULT))),
    encryptedBlob: toBase64(
      await sealEnvelope(vaultKey, utf8Encode(JSON.stringify(DOCUMENT)), syncBlobContext(VAULT, version)),
    ),
    schema: null,
    name: "app",
    updatedAt: new Date().toISOString(),
  };
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (e: unknown) => e,
  );

beforeEach(() => dropKeys());

describe("the keys a pairing hands over", () => {
  it("are kept as CryptoKeys nothing can export, and the bytes given are overwritten", async () => {
    const wrappingKey = randomKey();
    const sharing = await generateX25519KeyPair();
    const given = { wrappingKey: wrappingKey.slice(), sharingKey: sharing.privateKey.slice() };
    const held = await holdPairingKeys(ME, given);
    expect(given.wrappingKey.every((b) => b === 0)).toBe(true);
    expect(given.sharingKey.every((b) => b === 0)).toBe(true);
    expect(held.wrappingKey.extractable).toBe(false);
    expect(held.sharingKey!.privateKey.extractable).toBe(false);
    await expect(globalThis.crypto.subtle.exportKey("raw", held.wrappingKey)).rejects.toThrow();
    await expect(globalThis.crypto.subtle.exportKey("pkcs8", held.sharingKey!.privateKey)).rejects.toThrow();
    expect(held.sharingKey!.publicKey).toEqual(sharing.publicKey);
    expect(held.sharingKey!.fingerprint).toBe(await sharingKeyFingerprint(sharing.publicKey));
    expect(heldKeys()?.account).toBe(ME);
    dropKeys();
    expect(heldKeys()).toBeNull();
  });
});

describe("openPersonalCopy", () => {
  it("opens a copy whose key is wrapped for the paired wrapping key", async () => {
    const wrappingKey = randomKey();
    const copy = await personalCopy(wrappingKey, 3);
    await holdPairingKeys(ME, { wrappingKey: wrappingKey.slice(), sharingKey: null });
    expect(await openPersonalCopy(copy)).toEqual(DOCUMENT);
  });

  it("is LK_VAULT_NOT_PAIRED without keys, or for another wrapping key", async () => {
    const wrappingKey = randomKey();
    const copy = await personalCopy(wrappingKey, 1);
    expect(isLatchkeyError(await failure(openPersonalCopy(copy)), "LK_VAULT_NOT_PAIRED")).toBe(true);
    await holdPairingKeys(ME, { wrappingKey: wrappingKey.slice(), sharingKey: null });
    const rotated = await personalCopy(randomKey(), 2);
    expect(isLatchkeyError(await failure(openPersonalCopy(rotated)), "LK_VAULT_NOT_PAIRED")).toBe(true);
  });

  it("refuses a blob replayed under another version or vault", async () => {
    const wrappingKey = randomKey();
    await holdPairingKeys(ME, { wrappingKey: wrappingKey.slice(), sharingKey: null });
    const copy = await personalCopy(wrappingKey, 3);
    const relabelled = { ...copy, version: 4 };
    expect(isLatchkeyError(await failure(openPersonalCopy(relabelled)), "LK_VAULT_DECRYPT_FAILED")).toBe(
      true,
    );
    const other = { ...copy, vaultId: "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8f" };
    expect(isLatchkeyError(await failure(openPersonalCopy(other)), "LK_VAULT_NOT_PAIRED")).toBe(true);
  });

  it("refuses an older version than one this page opened, but a copy that did not open raises no bar", async () => {
    const wrappingKey = randomKey();
    await holdPairingKeys(ME, { wrappingKey: wrappingKey.slice(), sharingKey: null });
    await openPersonalCopy(await personalCopy(wrappingKey, 5));
    const older = await failure(openPersonalCopy(await personalCopy(wrappingKey, 4)));
    expect(isLatchkeyError(older, "LK_VAULT_ROLLBACK")).toBe(true);
    // A forged version 9 that does not decrypt, then the genuine version 6.
    const forged = { ...(await personalCopy(wrappingKey, 6)), version: 9 };
    expect(isLatchkeyError(await failure(openPersonalCopy(forged)), "LK_VAULT_DECRYPT_FAILED")).toBe(true);
    expect(await openPersonalCopy(await personalCopy(wrappingKey, 6))).toEqual(DOCUMENT);
  });
});

describe("openOrgCopy", () => {
  const ORG = "acme";
  let mine: X25519KeyPair;
  let alice: X25519KeyPair;

  const member = async (
    userId: string,
    email: string,
    role: OrgMemberDetail["role"],
    key: X25519KeyPair | null,
  ): Promise<OrgMemberDetail> => ({
    userId,
    email,
    role,
    addedAt: new Date().toISOString(),
    sharingKeyFingerprint: key === null ? null : await sharingKeyFingerprint(key.publicKey),
    needsShare: false,
    keys: [],
  });

  /** A copy shared by `sharer` (as `sharerId`), for my sharing key. */
  async function orgCopy(
    sharer: X25519KeyPair,
    sharerId: string,
    options: { version?: number; keyVersion?: number; email?: string | null } = {},
  ): Promise<OrgPullResponse> {
    const version = options.version ?? 2;
    const keyVersion = options.keyVersion ?? version;
    const vaultKey = randomKey();
    return {
      vaultId: VAULT,
      version,
      encryptedBlob: toBase64(
        await sealEnvelope(
          vaultKey,
          utf8Encode(JSON.stringify(DOCUMENT)),
          syncBlobContext(VAULT, version, ORG),
        ),
      ),
      wrappedKey: await wrapKeyFromSender(
        vaultKey,
        mine.publicKey,
        sharer,
        orgVaultKeyContext(VAULT, ORG, keyVersion),
      ),
      fingerprint: await sharingKeyFingerprint(mine.publicKey),
      keyVersion,
      wrappedBy: {
        userId: sharerId,
        email: options.email === undefined ? "alice@example.test" : options.email,
        role: options.email === null ? null : "maintainer",
        publicKey: toBase64(sharer.publicKey),
        fingerprint: await sharingKeyFingerprint(sharer.publicKey),
      },
      schema: null,
      name: "app",
      updatedAt: new Date().toISOString(),
    };
  }

  beforeEach(async () => {
    mine = await generateX25519KeyPair();
    alice = await generateX25519KeyPair();
    await holdPairingKeys(ME, { wrappingKey: randomKey(), sharingKey: mine.privateKey.slice() });
  });

  it("opens a copy a maintainer shared from their registered key, naming them and the key's fingerprint", async () => {
    const members = [await member(ALICE, "alice@example.test", "maintainer", alice)];
    const opened = await openOrgCopy(ORG, await orgCopy(alice, ALICE), members);
    expect(opened.document).toEqual(DOCUMENT);
    expect(opened.sharedBy).toEqual({
      userId: ALICE,
      email: "alice@example.test",
      role: "maintainer",
      fingerprint: await sharingKeyFingerprint(alice.publicKey),
      self: false,
    });
    // An admin may share too (every role above maintainer may).
    const byAdmin = [await member(ALICE, "alice@example.test", "admin", alice)];
    expect((await openOrgCopy(ORG, await orgCopy(alice, ALICE), byAdmin)).sharedBy.role).toBe("admin");
    // Your own share, from the sharing key this browser holds.
    const own = await openOrgCopy(ORG, await orgCopy(mine, ME, { email: "me@example.test" }), []);
    expect(own.sharedBy).toMatchObject({ userId: ME, self: true, role: null });
  });

  it("does not take a sharer the server does not list as a current owner or maintainer with that key", async () => {
    const copy = await orgCopy(alice, ALICE);
    const untrusted = async (members: OrgMemberDetail[]) =>
      isLatchkeyError(await failure(openOrgCopy(ORG, copy, members)), "LK_ORG_MEMBER_UNTRUSTED");
    // Not a member (any more).
    expect(await untrusted([])).toBe(true);
    // A member, but not one who may share.
    expect(await untrusted([await member(ALICE, "alice@example.test", "member", alice)])).toBe(true);
    // A maintainer whose registered key is another one (the wrap was made from a key the server planted).
    expect(
      await untrusted([
        await member(ALICE, "alice@example.test", "maintainer", await generateX25519KeyPair()),
      ]),
    ).toBe(true);
    // An account that no longer exists.
    const gone = await orgCopy(alice, ALICE, { email: null });
    const error = await failure(openOrgCopy(ORG, gone, [await member(ALICE, "a@x.test", "owner", alice)]));
    expect(isLatchkeyError(error, "LK_ORG_MEMBER_UNTRUSTED")).toBe(true);
    // "You" with a sharing key this browser was not given.
    const planted = await orgCopy(alice, ME);
    expect(isLatchkeyError(await failure(openOrgCopy(ORG, planted, [])), "LK_ORG_MEMBER_UNTRUSTED")).toBe(
      true,
    );
  });

  it("refuses a wrap that does not open from the named sharer's key, and a fingerprint the server made up", async () => {
    const members = [await member(ALICE, "alice@example.test", "owner", alice)];
    // Wrapped from another key, but naming Alice's.
    const forged = await orgCopy(await generateX25519KeyPair(), ALICE);
    const named = {
      ...forged,
      wrappedBy: {
        ...forged.wrappedBy,
        publicKey: toBase64(alice.publicKey),
        fingerprint: members[0]!.sharingKeyFingerprint!,
      },
    };
    expect(isLatchkeyError(await failure(openOrgCopy(ORG, named, members)), "LK_VAULT_DECRYPT_FAILED")).toBe(
      true,
    );
    // For another key version than it was wrapped for.
    const copy = await orgCopy(alice, ALICE, { version: 3, keyVersion: 2 });
    const replayed = { ...copy, keyVersion: 3 };
    expect(
      isLatchkeyError(await failure(openOrgCopy(ORG, replayed, members)), "LK_VAULT_DECRYPT_FAILED"),
    ).toBe(true);
    // A fingerprint that is not the key's.
    const lying = { ...copy, wrappedBy: { ...copy.wrappedBy, fingerprint: "0".repeat(64) } };
    expect(isLatchkeyError(await failure(openOrgCopy(ORG, lying, members)), "LK_SERVER_ERROR")).toBe(true);
  });

  it("is LK_ORG_VAULT_KEY_MISSING without a sharing key, or for another sharing key of the account", async () => {
    const members = [await member(ALICE, "alice@example.test", "maintainer", alice)];
    const copy = await orgCopy(alice, ALICE);
    const otherKey = { ...copy, fingerprint: "1".repeat(64) };
    expect(
      isLatchkeyError(await failure(openOrgCopy(ORG, otherKey, members)), "LK_ORG_VAULT_KEY_MISSING"),
    ).toBe(true);
    await holdPairingKeys(ME, { wrappingKey: randomKey(), sharingKey: null });
    expect(isLatchkeyError(await failure(openOrgCopy(ORG, copy, members)), "LK_ORG_VAULT_KEY_MISSING")).toBe(
      true,
    );
  });

  it("refuses an older key version than one this page opened (the old key of a rotation)", async () => {
    const members = [await member(ALICE, "alice@example.test", "maintainer", alice)];
    await openOrgCopy(ORG, await orgCopy(alice, ALICE, { version: 4, keyVersion: 4 }), members);
    const older = await orgCopy(alice, ALICE, { version: 5, keyVersion: 3 });
    expect(isLatchkeyError(await failure(openOrgCopy(ORG, older, members)), "LK_VAULT_ROLLBACK")).toBe(true);
  });
});
