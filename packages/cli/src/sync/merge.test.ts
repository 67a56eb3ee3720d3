import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { VaultDocument } from "../vault/vault-store.js";
import { mergeDocuments, sameDocument } from "./merge.js";

describe("three-way merge of a pulled vault", () => {
  it("keeps local-only changes, takes server-only changes, keeps local on both and lists those names", () => {
    const base: VaultDocument = {
      default: { SAME: "s", LOCAL: "l0", REMOTE: "r0", BOTH: "b0", GONE_HERE: "g" },
    };
    const local: VaultDocument = {
      default: { SAME: "s", LOCAL: "l1", REMOTE: "r0", BOTH: "mine", NEW_HERE: "n" },
    };
    const remote: VaultDocument = {
      default: { SAME: "s", LOCAL: "l0", REMOTE: "r1", BOTH: "theirs", GONE_HERE: "g", NEW_THERE: "t" },
      staging: { ONLY: "x" },
    };
    const merged = mergeDocuments(base, local, remote);
    expect(merged.document).toEqual({
      default: { SAME: "s", LOCAL: "l1", REMOTE: "r1", BOTH: "mine", NEW_HERE: "n", NEW_THERE: "t" },
      staging: { ONLY: "x" },
    });
    expect(merged.conflicts).toEqual(["default/BOTH"]);
    expect(merged.fromServer).toEqual(["default/NEW_THERE", "default/REMOTE", "staging/ONLY"]);
    expect(merged.keptLocal).toEqual(["default/GONE_HERE", "default/LOCAL", "default/NEW_HERE"]);
  });

  it("a deletion on the server is taken when the key is unchanged here; deleted here and changed there conflicts", () => {
    const base: VaultDocument = { default: { A: "1", B: "2" } };
    const merged = mergeDocuments(base, { default: { A: "1" } }, { default: { B: "3" } });
    expect(merged.document).toEqual({ default: {} });
    expect(merged.fromServer).toEqual(["default/A"]);
    expect(merged.conflicts).toEqual(["default/B"]);
  });

  it("without a base every difference is a conflict that keeps the local value", () => {
    const merged = mergeDocuments({}, { default: { A: "mine" } }, { default: { A: "theirs", B: "b" } });
    expect(merged.document).toEqual({ default: { A: "mine", B: "b" } });
    expect(merged.conflicts).toEqual(["default/A"]);
  });

  const doc = fc.dictionary(
    fc.constantFrom("default", "staging"),
    fc.dictionary(fc.constantFrom("A", "B", "C", "D"), fc.constantFrom("1", "2", "3")),
  );

  it("property: never loses a local change, takes every server-only change, agrees when both agree", () => {
    fc.assert(
      fc.property(doc, doc, doc, (base, local, remote) => {
        const { document, conflicts } = mergeDocuments(base, local, remote);
        for (const env of new Set([...Object.keys(base), ...Object.keys(local), ...Object.keys(remote)])) {
          for (const key of ["A", "B", "C", "D"]) {
            const b = base[env]?.[key];
            const l = local[env]?.[key];
            const r = remote[env]?.[key];
            const m = document[env]?.[key];
            if (l !== b)
              expect(m).toBe(l); // a local change always survives
            else expect(m).toBe(r); // unchanged here: the server's value
            expect(conflicts.includes(`${env}/${key}`)).toBe(l !== b && r !== b && l !== r);
          }
        }
      }),
    );
  });

  it("property: merging with no changes on either side is the identity", () => {
    fc.assert(fc.property(doc, (d) => sameDocument(mergeDocuments(d, d, d).document, d)));
  });
});
