import type { VaultDocument } from "../vault/vault-store.js";

/** What a three-way merge of the local vault with a pulled version did. */
export interface MergeResult {
  /** The reconciled document: what the local vault becomes. */
  document: VaultDocument;
  /** Keys taken from the server (changed there only), as `environment/KEY`, sorted. */
  fromServer: string[];
  /** Keys changed only locally and kept, as `environment/KEY`, sorted. */
  keptLocal: string[];
  /**
   * Keys changed on both sides to different values (or deleted on one side and changed on the other), as
   * `environment/KEY`, sorted. The local value (or local absence) is kept so the next push resolves them.
   */
  conflicts: string[];
}

const keysOf = (...docs: (Record<string, unknown> | undefined)[]): string[] =>
  [...new Set(docs.flatMap((d) => (d ? Object.keys(d) : [])))].sort();

/**
 * Reconciles the local vault with a pulled one against `base`, the last version both shared. Per key: the same
 * value on both sides stays; a key changed on one side only takes that side's value (a deletion included); a key
 * changed on both sides keeps the local value and is reported, so no unpushed local change is ever lost. An
 * environment stays when it has keys or exists (even empty) on either side.
 */
export function mergeDocuments(
  base: VaultDocument,
  local: VaultDocument,
  remote: VaultDocument,
): MergeResult {
  const document: VaultDocument = {};
  const fromServer: string[] = [];
  const keptLocal: string[] = [];
  const conflicts: string[] = [];
  for (const environment of keysOf(base, local, remote)) {
    const b = base[environment] ?? {};
    const l = local[environment];
    const r = remote[environment];
    const merged: Record<string, string> = {};
    for (const key of keysOf(b, l, r)) {
      const bv = b[key];
      const lv = l?.[key];
      const rv = r?.[key];
      let value: string | undefined;
      if (lv === rv) value = lv;
      else if (lv === bv) {
        value = rv;
        fromServer.push(`${environment}/${key}`);
      } else if (rv === bv) {
        value = lv;
        keptLocal.push(`${environment}/${key}`);
      } else {
        value = lv;
        conflicts.push(`${environment}/${key}`);
      }
      if (value !== undefined) merged[key] = value;
    }
    if (Object.keys(merged).length > 0 || l !== undefined || r !== undefined) document[environment] = merged;
  }
  return { document, fromServer, keptLocal, conflicts };
}

/** True when two documents hold the same environments and values. */
export function sameDocument(a: VaultDocument, b: VaultDocument): boolean {
  const envs = keysOf(a, b);
  return envs.every((e) => {
    const x = a[e];
    const y = b[e];
    if (x === undefined || y === undefined) return false;
    const keys = keysOf(x, y);
    return keys.every((k) => x[k] !== undefined && x[k] === y[k]);
  });
}
