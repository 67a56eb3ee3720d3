// The race of issue 6 point 9 shared by sync-concurrency*.test.ts: CLIENTS clients × PUSHES versioned pushes on
// one vault over real HTTP, and the checks on the outcome.
import { createHash, randomBytes } from "node:crypto";
import {
  apiErrorBodySchema,
  pullResponseSchema,
  pushResponseSchema,
  type PullResponse,
} from "@latchkey/core";
import { expect } from "vitest";
import type { OpenDatabase } from "../src/db/index.js";
import { apiHeaders, expectedSignature, fakeWrappedKey } from "./sync-support.js";

/** Concurrent clients. */
export const CLIENTS = 32;
/** Push attempts per client. */
export const PUSHES = 200;

/** One acknowledged push. */
export interface Ack {
  version: number;
  sha256: string;
  blob: string;
  client: number;
}

/** What the clients saw. */
export interface RaceResult {
  acked: Ack[];
  conflicts: number;
}

/** Runs the race against `urls` (clients spread over them round-robin). */
export async function race(urls: readonly string[], token: string, vaultId: string): Promise<RaceResult> {
  const acked: Ack[] = [];
  let conflicts = 0;
  const client = async (c: number): Promise<void> => {
    const path = `/api/v1/vaults/${vaultId}`;
    const url = `${urls[c % urls.length]}${path}`;
    let base = 0;
    for (let i = 0; i < PUSHES; i++) {
      // Unique per push: which client, which attempt, and random bytes.
      const blob = Buffer.concat([Buffer.from(`c${c}i${i}:`), randomBytes(48)]).toString("base64");
      const headers = apiHeaders(token);
      const response = await fetch(url, {
        method: "PUT",
        headers: { ...headers, "content-type": "application/json" },
        body: JSON.stringify({
          encryptedBlob: blob,
          wrappedKey: fakeWrappedKey(),
          name: "race",
          baseVersion: base,
        }),
      });
      const text = await response.text();
      if (response.status === 200) {
        const requestId = headers["x-latchkey-request-id"];
        expect(response.headers.get("x-latchkey-signature")).toBe(
          expectedSignature(token, { method: "PUT", path, requestId, status: 200 }, text),
        );
        const ack = pushResponseSchema.parse(JSON.parse(text));
        expect(ack.version).toBe(base + 1);
        acked.push({
          version: ack.version,
          sha256: createHash("sha256").update(blob, "base64").digest("hex"),
          blob,
          client: c,
        });
        base = ack.version;
      } else if (response.status === 409) {
        const body = apiErrorBodySchema.parse(JSON.parse(text));
        expect(body.code).toBe("LK_VAULT_CONFLICT");
        expect(body.currentVersion).toBeGreaterThan(base);
        conflicts++;
        base = body.currentVersion!;
      } else {
        throw new Error(`client ${c} push ${i}: unexpected ${response.status} ${text}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  return { acked, conflicts };
}

/** The assertions of point 9, given the race and the server's history and final copy. */
export function checkRace(
  label: string,
  result: RaceResult,
  history: Array<{ version: number; blobSha256: string }>,
  final: PullResponse,
  pushAudits: number,
): void {
  const { acked, conflicts } = result;
  console.log(
    `[sync-concurrency] ${label}: ${CLIENTS} clients × ${PUSHES} pushes = ${CLIENTS * PUSHES}; ` +
      `acknowledged ${acked.length}, 409 ${conflicts}, history rows ${history.length}, ` +
      `audit rows ${pushAudits}, lost updates ${acked.length - history.length}`,
  );
  expect(acked.length + conflicts).toBe(CLIENTS * PUSHES);
  expect(acked.length).toBeGreaterThan(0);
  const n = acked.length;
  // Versions 1..N, no gap, no repeat — both in the acknowledgements and in the history.
  expect(acked.map((a) => a.version).sort((a, b) => a - b)).toEqual(
    Array.from({ length: n }, (_, i) => i + 1),
  );
  expect(history.map((h) => h.version)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  // Every acknowledged push is in the history exactly once, with its own blob.
  const byVersion = new Map(acked.map((a) => [a.version, a]));
  for (const row of history) expect(row.blobSha256).toBe(byVersion.get(row.version)!.sha256);
  // 0 lost updates: the copy the server holds is the last acknowledged push.
  expect(final.version).toBe(n);
  expect(final.encryptedBlob).toBe(byVersion.get(n)!.blob);
  expect(pushAudits).toBe(n);
}

/** The final copy, pulled. */
export async function pullFinal(url: string, token: string, vaultId: string): Promise<PullResponse> {
  const response = await fetch(`${url}/api/v1/vaults/${vaultId}`, { headers: apiHeaders(token) });
  expect(response.status).toBe(200);
  return pullResponseSchema.parse(await response.json());
}

/** How many vault.push audit rows the vault has. */
export async function pushAuditCount(database: OpenDatabase, vaultId: string): Promise<number> {
  const rows = await database.db
    .selectFrom("audit_events")
    .select("id")
    .where("vault_id", "=", vaultId)
    .where("action", "=", "vault.push")
    .execute();
  return rows.length;
}
