import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  concatBytes,
  constantTimeEqual,
  fromBase64,
  fromHex,
  isCanonicalBase64,
  toBase64,
  toBufferSource,
  toHex,
  uint32be,
  utf8Decode,
  utf8Encode,
} from "./bytes.js";
import { isLatchkeyError } from "./errors.js";

const STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Independent oracle: Node's decoder is lenient, so require the re-encoding to be the input itself. */
function canonicalOracle(text: string): boolean {
  return (
    text.length % 4 === 0 &&
    /^[A-Za-z0-9+/]*={0,2}$/.test(text) &&
    Buffer.from(text, "base64").toString("base64") === text
  );
}

function tryFromBase64(text: string): Uint8Array | undefined {
  try {
    return fromBase64(text);
  } catch (error) {
    if (!isLatchkeyError(error, "LK_FORMAT_INVALID")) throw error;
    return undefined;
  }
}

/** Characters that canonical base64 is most easily confused with. */
const NOISE = [..."=-_ \n\r\t:.", "\u00a0", "\uff21", "\u0000", "é"];

/** A canonical base64 string plus up to three edits that a copy-paste or a lenient encoder might make. */
const mutatedBase64 = fc
  .tuple(
    fc.uint8Array({ maxLength: 40 }),
    fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant("insert"), at: fc.nat(), ch: fc.constantFrom(...NOISE, ...STANDARD) }),
        fc.record({ kind: fc.constant("replace"), at: fc.nat(), ch: fc.constantFrom(...NOISE, ...STANDARD) }),
        fc.record({ kind: fc.constant("delete"), at: fc.nat() }),
        fc.record({ kind: fc.constantFrom("addPad", "dropPad", "urlSafe", "bumpLastData") }),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([bytes, edits]) => {
    let s = Buffer.from(bytes).toString("base64");
    for (const edit of edits) {
      const at = "at" in edit ? edit.at % (s.length + 1) : 0;
      switch (edit.kind) {
        case "insert":
          s = s.slice(0, at) + edit.ch + s.slice(at);
          break;
        case "replace":
          s = s.slice(0, at) + edit.ch + s.slice(at + 1);
          break;
        case "delete":
          s = s.slice(0, at) + s.slice(at + 1);
          break;
        case "addPad":
          s += "=";
          break;
        case "dropPad":
          s = s.replace(/=$/, "");
          break;
        case "urlSafe":
          s = s.replaceAll("+", "-").replaceAll("/", "_");
          break;
        case "bumpLastData": {
          // Changes the unused low bits when the next alphabet value keeps the high bits.
          const i = s.replace(/=+$/, "").length - 1;
          if (i >= 0) s = s.slice(0, i) + STANDARD[(STANDARD.indexOf(s[i]!) + 1) % 64]! + s.slice(i + 1);
          break;
        }
      }
    }
    return s;
  });

describe("utf8", () => {
  it("round-trips text, including astral characters", () => {
    const text = "latchkey ✓ 🔑 é";
    expect(utf8Decode(utf8Encode(text))).toBe(text);
    expect(utf8Encode("é")).toEqual(new Uint8Array([0xc3, 0xa9]));
  });

  it("rejects malformed UTF-8 instead of substituting U+FFFD", () => {
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0x80]]) {
      expect(() => utf8Decode(new Uint8Array(bad))).toThrow(
        expect.objectContaining({ code: "LK_FORMAT_INVALID" }),
      );
    }
  });

  it("keeps a leading byte order mark as data", () => {
    expect(utf8Decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41]))).toBe("\ufeffA");
  });
});

describe("base64", () => {
  it("encodes the RFC 4648 §10 vectors", () => {
    const vectors: Array<[string, string]> = [
      ["", ""],
      ["f", "Zg=="],
      ["fo", "Zm8="],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg=="],
      ["fooba", "Zm9vYmE="],
      ["foobar", "Zm9vYmFy"],
    ];
    for (const [plain, encoded] of vectors) {
      expect(toBase64(utf8Encode(plain))).toBe(encoded);
      expect(utf8Decode(fromBase64(encoded))).toBe(plain);
    }
    expect(toBase64(new Uint8Array([0xfb, 0xff, 0xbf]))).toBe("+/+/");
  });

  it("rejects every non-canonical spelling", () => {
    const rejected = [
      "Zg", // missing padding
      "Zg=", // short padding
      "Zg===", // extra padding
      "Zh==", // non-zero trailing bits
      "Zm9=", // non-zero trailing bits
      "Zm9v\n",
      " Zm9v",
      "Zm9v ",
      "Zm 9v",
      "Zm9v\r\n",
      "-_-_", // URL-safe alphabet
      "Zm9=v===",
      "=Zm9",
      "Zg==Zg==", // padding in the middle
      "====",
      "Zm9\u00e9",
      "Zm9\uff56",
    ];
    for (const text of rejected) {
      expect(() => fromBase64(text), JSON.stringify(text)).toThrow(
        expect.objectContaining({ code: "LK_FORMAT_INVALID" }),
      );
      expect(isCanonicalBase64(text), JSON.stringify(text)).toBe(false);
    }
  });

  it("never quotes the input in its error", () => {
    try {
      fromBase64("c2VjcmV0LXRva2Vu!");
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain("c2VjcmV0");
    }
  });

  it("agrees with Node's encoder and round-trips (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const encoded = toBase64(bytes);
        expect(encoded).toBe(Buffer.from(bytes).toString("base64"));
        expect(fromBase64(encoded)).toEqual(bytes);
      }),
      { numRuns: 10_000 },
    );
  });

  it("fromBase64 accepts exactly the canonical strings (property)", () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedBase64,
          fc.string({ unit: fc.constantFrom(...STANDARD, "=", "=", "=", ...NOISE), maxLength: 24 }),
          fc.string({ unit: "binary", maxLength: 12 }),
        ),
        (text) => {
          const decoded = tryFromBase64(text);
          expect(decoded !== undefined).toBe(canonicalOracle(text));
          if (decoded) {
            accepted++;
            expect(toBase64(decoded)).toBe(text);
          } else {
            rejected++;
          }
        },
      ),
      { numRuns: 10_000 },
    );
    // Guards the generator: both sides of the "iff" must actually be exercised.
    expect(accepted).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(1000);
  });

  it("isCanonicalBase64 accepts exactly what fromBase64 accepts (property)", () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          mutatedBase64,
          fc.string({ unit: fc.constantFrom(...STANDARD, "=", "=", "=", ...NOISE), maxLength: 24 }),
          fc.string({ unit: "binary", maxLength: 12 }),
        ),
        (text) => {
          const canonical = canonicalOracle(text);
          expect(isCanonicalBase64(text), JSON.stringify(text)).toBe(canonical);
          if (canonical) accepted++;
        },
      ),
      { numRuns: 10_000 },
    );
    expect(accepted).toBeGreaterThan(1000);
  });

  it("isCanonicalBase64 takes the RFC 4648 vectors and refuses what atob forgives", () => {
    for (const text of ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "+/+/"])
      expect(isCanonicalBase64(text), text).toBe(true);
    // Whitespace where the length still fits, a missing pad made up by spacing, spare bits set.
    for (const text of ["Zm9v Zg=", "Zm 9", "Zm8 ", "Zg\t=", "Zh==", "Zm9="])
      expect(isCanonicalBase64(text), JSON.stringify(text)).toBe(false);
  });
});

describe("hex", () => {
  it("round-trips and writes lowercase", () => {
    expect(toHex(new Uint8Array([0, 1, 0xab, 0xff]))).toBe("0001abff");
    expect(fromHex("0001abff")).toEqual(new Uint8Array([0, 1, 0xab, 0xff]));
    expect(fromHex("")).toEqual(new Uint8Array(0));
  });

  it("rejects odd length, uppercase and non-hex characters", () => {
    for (const text of ["abc", "AB", "0g", " 00", "00\n"]) {
      expect(() => fromHex(text)).toThrow(expect.objectContaining({ code: "LK_FORMAT_INVALID" }));
    }
  });
});

describe("concatBytes", () => {
  it("joins in order and copies", () => {
    const a = new Uint8Array([1, 2]);
    const joined = concatBytes(a, new Uint8Array(0), new Uint8Array([3]));
    expect(joined).toEqual(new Uint8Array([1, 2, 3]));
    a[0] = 9;
    expect(joined[0]).toBe(1);
    expect(concatBytes()).toEqual(new Uint8Array(0));
  });
});

describe("constantTimeEqual", () => {
  it("compares content and length", () => {
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it("agrees with Buffer.equals (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
        expect(constantTimeEqual(a, b)).toBe(Buffer.from(a).equals(Buffer.from(b)));
        expect(constantTimeEqual(a, new Uint8Array(a))).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("internal helpers", () => {
  it("uint32be writes big-endian and range-checks", () => {
    expect(uint32be(0x01020304)).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(uint32be(0xffffffff)).toEqual(new Uint8Array([255, 255, 255, 255]));
    expect(() => uint32be(-1)).toThrow(RangeError);
    expect(() => uint32be(2 ** 32)).toThrow(RangeError);
  });

  it("toBufferSource copies into a plain ArrayBuffer", () => {
    const shared = new Uint8Array(new SharedArrayBuffer(2));
    shared[0] = 7;
    const copy = toBufferSource(shared);
    expect(copy.buffer).toBeInstanceOf(ArrayBuffer);
    expect(copy).toEqual(new Uint8Array([7, 0]));
  });
});
