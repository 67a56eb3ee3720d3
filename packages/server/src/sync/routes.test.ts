import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeCanonicalBase64 } from "./routes.js";

// The canonical form spelled out as a regular expression: the oracle the fast decoder is checked against.
const CANONICAL = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;

describe("decodeCanonicalBase64", () => {
  it("accepts exactly the canonical spelling of every byte string", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const text = Buffer.from(bytes).toString("base64");
        expect(decodeCanonicalBase64(text)).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it("agrees with the canonical-form expression on arbitrary strings over the base64 alphabet and more", () => {
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n.";
    const char = fc.constantFrom(...alphabet.split(""));
    fc.assert(
      fc.property(fc.array(char, { maxLength: 24 }), (chars) => {
        const text = chars.join("");
        expect(decodeCanonicalBase64(text) !== null, JSON.stringify(text)).toBe(CANONICAL.test(text));
      }),
      { numRuns: 5000 },
    );
  });

  it("refuses the near misses", () => {
    for (const text of ["AB==", "AAB=", "AA", "AAA", "AA-_", "AA==\n", " AAAA", "AA=A", "A===", "AAAA===="]) {
      expect(decodeCanonicalBase64(text), text).toBeNull();
    }
  });
});
