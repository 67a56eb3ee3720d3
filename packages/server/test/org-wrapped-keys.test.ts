// Malformed wrapped keys through the share route, on SQLite and PostgreSQL: well over 150 spellings that are not the
// one wire form of core's x25519.ts (wrong part lengths, URL-safe base64, whitespace, extra or missing colons and
// parts, non-canonical padding, other separators, other types, …), each placed among valid keys of the other
// members. Every one is a 400 that does not quote it, and no row of any organisation table or the audit log is
// written. The same share with the valid key is the positive control.
import { randomUUID } from "node:crypto";
import { parseWrappedKey, toBase64, toHex } from "@latchkey/core";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { describeEachDatabase } from "./databases.js";
import { call, makeOrg, newMember, shareBody, type Member } from "./org-support.js";
import { newVaultKey, openMigrated, startSyncServer, type SyncServer } from "./sync-support.js";

/** A valid wire key whose first part starts with the bytes fb ef ff: base64 `++//`, so URL-safe spellings differ. */
function withSlashes(wire: string): string {
  const { ephemeralPublic, iv, ciphertext } = parseWrappedKey(wire);
  const bytes = Uint8Array.from(ephemeralPublic);
  bytes.set([0xfb, 0xef, 0xff], 0);
  return `${toBase64(bytes)}:${toBase64(iv)}:${toBase64(ciphertext)}`;
}

/** Every malformed spelling made from the valid key `wire`, with what it is, for the failure messages. */
export function malformedWrappedKeys(wire: string): [string, unknown][] {
  const parts = wire.split(":");
  const bytesOf = parts.map((p) => Buffer.from(p, "base64"));
  const join = (replaced: string, at: number) => parts.map((p, i) => (i === at ? replaced : p)).join(":");
  const cases: [string, unknown][] = [];
  const partMutations: [string, (part: string, bytes: Buffer) => string][] = [
    ["one byte short", (_, b) => b.subarray(0, b.length - 1).toString("base64")],
    ["one byte long", (_, b) => Buffer.concat([b, Buffer.from([7])]).toString("base64")],
    ["empty", () => ""],
    ["twice as long", (_, b) => Buffer.concat([b, b]).toString("base64")],
    ["half as long", (_, b) => b.subarray(0, b.length >> 1).toString("base64")],
    ["URL-safe alphabet", (p) => p.replaceAll("+", "-").replaceAll("/", "_")],
    ["base64url without padding", (_, b) => b.toString("base64url")],
    ["padding stripped", (p) => (p.endsWith("=") ? p.replace(/=+$/, "") : `${p}=`)],
    ["an extra =", (p) => `${p}=`],
    ["two extra =", (p) => `${p}==`],
    ["padding in the middle", (p) => `${p.slice(0, 4)}==${p.slice(4)}`],
    ["leading space", (p) => ` ${p}`],
    ["trailing space", (p) => `${p} `],
    ["a space inside", (p) => `${p.slice(0, 5)} ${p.slice(5)}`],
    ["a newline inside", (p) => `${p.slice(0, 8)}\n${p.slice(8)}`],
    ["a tab at the end", (p) => `${p}\t`],
    ["hex", (_, b) => b.toString("hex")],
    ["a ! inside", (p) => `${p.slice(0, 3)}!${p.slice(4)}`],
    ["a . inside", (p) => `${p.slice(0, 3)}.${p.slice(4)}`],
    ["a NUL inside", (p) => `${p.slice(0, 3)}\u0000${p.slice(4)}`],
    ["a letter with an accent", (p) => `é${p.slice(1)}`],
    ["full-width letters", (p) => p.replace(/[A-Z]/, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0))],
    ["a zero-width space", (p) => `${p.slice(0, 6)}\u200b${p.slice(6)}`],
    ["MIME line break", (p) => `${p.slice(0, 10)}\r\n${p.slice(10)}`],
    ["one character short", (p) => p.replace(/=*$/, "").slice(0, -1)],
    ["one character long", (p) => `A${p}`],
    ["a * inside", (p) => `${p.slice(0, 2)}*${p.slice(3)}`],
    ["a % inside", (p) => `${p.slice(0, 2)}%${p.slice(3)}`],
    ["percent-encoded", (p) => encodeURIComponent(`+/${p.slice(2)}`)],
    ["a leading =", (p) => `=${p.slice(1)}`],
  ];
  parts.forEach((part, at) => {
    for (const [what, mutate] of partMutations) {
      const changed = mutate(part, bytesOf[at]!);
      if (changed !== part) cases.push([`part ${at + 1}: ${what}`, join(changed, at)]);
    }
  });
  // Non-zero bits after the last byte: the 32-byte part ends `x=`, whose last character carries 2 unused bits.
  const first = parts[0]!;
  for (const bump of [1, 2, 3]) {
    const last = first.charCodeAt(first.length - 2);
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const index = alphabet.indexOf(String.fromCharCode(last));
    const changed = `${first.slice(0, -2)}${alphabet[(index & ~3) | bump]}=`;
    cases.push([`part 1: unused bits set (${bump})`, join(changed, 0)]);
  }
  const [a, b, c] = parts as [string, string, string];
  for (const sep of [";", ",", ".", "|", " ", "/", "::", "-", "_", "\t", "：", "\u0000"]) {
    cases.push([`separated by ${JSON.stringify(sep)}`, [a, b, c].join(sep)]);
    cases.push([`first colon replaced by ${JSON.stringify(sep)}`, `${a}${sep}${b}:${c}`]);
    cases.push([`second colon replaced by ${JSON.stringify(sep)}`, `${a}:${b}${sep}${c}`]);
  }
  const shapes: [string, string][] = [
    ["one part", a],
    ["two parts (no ciphertext)", `${a}:${b}`],
    ["two parts (no ephemeral key)", `${b}:${c}`],
    ["two parts (no IV)", `${a}:${c}`],
    ["empty", ""],
    ["one colon", ":"],
    ["two colons", "::"],
    ["three colons", ":::"],
    ["empty ciphertext", `${a}:${b}:`],
    ["empty ephemeral key", `:${b}:${c}`],
    ["a trailing colon", `${wire}:`],
    ["a leading colon", `:${wire}`],
    ["four parts", `${wire}:${a}`],
    ["the ciphertext twice", `${wire}:${c}`],
    ["an empty part between", `${a}::${b}:${c}`],
    ["an empty part after", `${a}:${b}::${c}`],
    ["two trailing colons", `${wire}::`],
    ["the key twice", `${wire}${wire}`],
    ["the key twice with a colon", `${wire}:${wire}`],
    ["parts in another order", `${b}:${a}:${c}`],
    ["parts reversed", `${c}:${b}:${a}`],
    ["a leading space", ` ${wire}`],
    ["a trailing space", `${wire} `],
    ["a trailing newline", `${wire}\n`],
    ["a leading newline", `\n${wire}`],
    ["CRLF at the end", `${wire}\r\n`],
    ["a leading tab", `\t${wire}`],
    ["spaces around the colons", `${a} : ${b} : ${c}`],
    ["a space after a colon", `${a}: ${b}:${c}`],
    ["a space before a colon", `${a}:${b} :${c}`],
    ["quoted", `"${wire}"`],
    ["in brackets", `[${wire}]`],
    ["base64 of the whole wire form", Buffer.from(wire).toString("base64")],
    ["a byte order mark first", `\ufeff${wire}`],
    ["a zero-width space first", `\u200b${wire}`],
    ["a non-breaking space last", `${wire}\u00a0`],
    ["100 KiB", wire.repeat(1 + Math.ceil(102_400 / wire.length))],
    ["hex of all three parts", parts.map((p) => toHex(Buffer.from(p, "base64"))).join(":")],
    [
      "upper-case hex of all three parts",
      parts.map((p) => toHex(Buffer.from(p, "base64")).toUpperCase()).join(":"),
    ],
    ["URL-safe throughout", wire.replaceAll("+", "-").replaceAll("/", "_")],
    ["unpadded throughout", wire.replaceAll("=", "")],
    ["a version prefix", `v1:${wire}`],
    ["a label prefix", `x25519:${wire}`],
  ];
  cases.push(...shapes);
  const types: [string, unknown][] = [
    ["a number", 42],
    ["null", null],
    ["true", true],
    ["an object", { wrappedKey: wire }],
    ["an array of the key", [wire]],
    ["an array of its parts", parts],
    ["an empty array", []],
  ];
  cases.push(...types);
  // Some mutations coincide on some parts (a part without padding gains the same "=" two ways): keep each once.
  const seen = new Set<string>();
  return cases.filter(([, value]) => {
    const key = JSON.stringify(value);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

describeEachDatabase("malformed wrapped keys through the share route", (target) => {
  let database: OpenDatabase;
  let server: SyncServer;
  let app: FastifyInstance;
  let owner: Member;
  let member: Member;

  beforeAll(async () => {
    database = await openMigrated(await target.fresh());
    server = await startSyncServer(database);
    app = server.app;
    owner = await newMember(server, database.db);
    member = await newMember(server, database.db);
    await makeOrg(server, owner, "keys", [[member, "member"]]);
  });
  afterAll(async () => {
    await server?.close();
    await database?.close();
  });

  async function rows(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const table of [
      "org_vault_heads",
      "org_vault_versions",
      "vault_org_keys",
      "audit_events",
      "orgs",
      "org_members",
    ] as const) {
      const row = await database.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as("n"))
        .executeTakeFirstOrThrow();
      counts[table] = Number(row.n);
    }
    return counts;
  }

  it("refuses every one with a 400 that does not quote it, before any row is written", async () => {
    const vaultId = randomUUID();
    const key = newVaultKey();
    const valid = await shareBody(owner, "keys", vaultId, 0, key, [owner, member]);
    const keys = valid.wrappedKeys as { userId: string; wrappedKey: string; fingerprint: string }[];
    const wire = withSlashes(keys[1]!.wrappedKey);
    expect(() => parseWrappedKey(wire)).not.toThrow();
    const cases = malformedWrappedKeys(wire);
    expect(cases.length).toBeGreaterThanOrEqual(150);
    const before = await rows();
    let refused = 0;
    for (const [index, [what, bad]] of cases.entries()) {
      // The malformed key comes last in half the bodies and first in the others: every entry is checked.
      const badEntry = { ...keys[1]!, wrappedKey: bad };
      const wrappedKeys = index % 2 === 0 ? [keys[0], badEntry] : [badEntry, keys[0]];
      const res = await call(app, owner.token, "PUT", `/keys/vaults/${vaultId}/share`, {
        ...valid,
        wrappedKeys,
      });
      expect(res.statusCode, what).toBe(400);
      expect(res.json(), what).toMatchObject({ error: "ValidationError", code: "LK_SERVER_ERROR" });
      expect(res.json().message, what).toMatch(/^"wrappedKey" must be a wrapped key|^"wrappedKeys"/);
      if (typeof bad === "string" && bad.length > 8) {
        for (const part of bad.split(/[:\s]/).filter((p) => p.length > 8)) {
          expect(res.body, what).not.toContain(part);
        }
      }
      refused++;
    }
    console.log(`[org-wrapped-keys] ${target.kind}: ${refused} malformed wrapped keys refused with 400`);
    expect(await rows()).toEqual(before);

    // Positive control: the same body with the key as made is stored.
    const stored = await call(app, owner.token, "PUT", `/keys/vaults/${vaultId}/share`, valid);
    expect(stored.statusCode).toBe(200);
    const after = await rows();
    expect(after.org_vault_heads).toBe(before.org_vault_heads! + 1);
    expect(after.vault_org_keys).toBe(before.vault_org_keys! + 2);
  });
});
