import { randomUUID } from "node:crypto";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExitCode, isLatchkeyError } from "./errors.js";
import { MAX_VAULT_ID_LENGTH, validateVaultId, vaultIdProblem } from "./vault-id.js";

function rejection(id: string, source = "LATCHKEY_VAULT_ID") {
  try {
    validateVaultId(id, source);
  } catch (err) {
    if (isLatchkeyError(err, "LK_VAULT_ID_INVALID")) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(id)} to be rejected`);
}

describe("validateVaultId", () => {
  it("accepts UUID v4, Latchkey's own ids, and returns them in their one spelling, lower case", () => {
    for (let i = 0; i < 100; i++) {
      const id = randomUUID();
      expect(validateVaultId(id, "test")).toBe(id);
      expect(validateVaultId(id.toUpperCase(), "test")).toBe(id);
    }
    expect(validateVaultId("3F2504E0-4F89-41D3-9A0C-0305E82C3301", "test")).toBe(
      "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
    );
  });

  it("accepts other ids made of letters, digits, '-' and '_' up to 128 characters", () => {
    for (const id of ["a", "7", "my-app", "my_app_2", "x".repeat(MAX_VAULT_ID_LENGTH)]) {
      expect(validateVaultId(id, "test")).toBe(id);
    }
    expect(validateVaultId("A-b_C", "test")).toBe("a-b_c");
  });

  it.each([
    ["", "it is empty"],
    ["a/b", 'it contains "/"'],
    ["/etc", 'it contains "/"'],
    ["a\\b", 'it contains "\\"'],
    ["..", 'it contains ".."'],
    ["a..b", 'it contains ".."'],
    ["~", 'it starts with "~"'],
    ["~root", 'it starts with "~"'],
    ["C:", 'drive prefix "C:"'],
    ["c:vault", 'drive prefix "c:"'],
    [".hidden", 'it starts with "."'],
    [".", 'it starts with "."'],
    ["a\u0000b", "control character U+0000"],
    ["\n", "control character U+000A"],
    ["a\tb", "control character U+0009"],
    ["a\u007fb", "control character U+007F"],
    ["a\u0085b", "control character U+0085"],
    ["a\u009fb", "control character U+009F"],
    ["x".repeat(MAX_VAULT_ID_LENGTH + 1), "129 characters long, more than 128"],
    ["-rf", 'it starts with "-", not a letter or digit'],
    ["_x", 'it starts with "_"'],
    ["a.enc", 'it contains "."'],
    ["a b", "it contains U+0020"],
    ["ab:c", 'it contains ":"'],
    ["a*", 'it contains "*"'],
    ["a$HOME", 'it contains "$"'],
    ["caf\u00e9", "it contains U+00E9"],
    ["a\u200bb", "it contains U+200B"],
    ["a\u202eb", "it contains U+202E"],
    ["\ud83d\ude00", "it starts with U+1F600"],
    ["CON", "reserved device name on Windows"],
    ["nul", "reserved device name on Windows"],
    ["Com1", "reserved device name on Windows"],
    ["LPT9", "reserved device name on Windows"],
  ])("rejects %j naming the cause", (id, cause) => {
    const err = rejection(id);
    expect(err.message).toContain(cause);
    expect(err.message).toContain("LATCHKEY_VAULT_ID");
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.details).toEqual({ source: "LATCHKEY_VAULT_ID", reason: vaultIdProblem(id) });
  });

  it("names the source it was given", () => {
    const err = rejection("../x", "latchkey.json at /repo/latchkey.json");
    expect(err.message).toBe('Invalid vault id from latchkey.json at /repo/latchkey.json: it contains "..".');
  });

  it("never echoes a control character into the message", () => {
    const err = rejection("a\u001b[31mred");
    expect(err.message).not.toContain("\u001b");
  });

  it("rejects a non-string handed in from untyped JSON", () => {
    expect(vaultIdProblem(42 as unknown as string)).toBe("it is a number, not a string");
  });

  it("keeps every accepted id a direct child of the vaults directory, on POSIX and Windows (property)", () => {
    const dangerous = fc.constantFrom(
      "a",
      "Z",
      "0",
      "9",
      "-",
      "_",
      ".",
      "..",
      "/",
      "\\",
      "~",
      ":",
      "C",
      "\u0000",
      "\u0085",
      " ",
      "%",
      "$",
      "*",
      "?",
      "\u00e9",
      "\u2215",
      "\uff0f",
    );
    const candidate = fc.oneof(
      fc.string({ unit: "binary", maxLength: 140 }),
      fc.string({ unit: dangerous, maxLength: 140 }),
      fc.string({ unit: fc.constantFrom("a", "1", "-", "_"), minLength: 1, maxLength: 140 }),
      fc.uuid(),
    );
    let accepted = 0;
    fc.assert(
      fc.property(candidate, (id) => {
        if (vaultIdProblem(id) !== undefined) {
          expect(() => validateVaultId(id, "test")).toThrow();
          return;
        }
        accepted++;
        const valid = validateVaultId(id, "test");
        expect(valid).toBe(id.toLowerCase());
        for (const [p, vaultsDir] of [
          [path.posix, "/home/u/.latchkey/vaults"],
          [path.win32, "C:\\Users\\u\\.latchkey\\vaults"],
        ] as const) {
          const joined = p.join(vaultsDir, `${valid}.enc`);
          expect(p.dirname(joined)).toBe(vaultsDir);
          expect(p.basename(joined)).toBe(`${valid}.enc`);
          expect(p.relative(vaultsDir, joined)).toBe(`${valid}.enc`);
          expect(p.isAbsolute(`${valid}.enc`)).toBe(false);
        }
      }),
      { numRuns: 20_000 },
    );
    // The property says nothing unless a good share of the inputs were accepted.
    expect(accepted).toBeGreaterThan(2_000);
  });

  it("accepts exactly the whitelist (property)", () => {
    const idChar = fc.constantFrom(..."abcXYZ019-_");
    const start = fc.constantFrom(..."aZ09");
    fc.assert(
      fc.property(start, fc.string({ unit: idChar, maxLength: MAX_VAULT_ID_LENGTH - 1 }), (first, rest) => {
        const id = first + rest;
        if (/^(?:CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])$/i.test(id)) return;
        expect(vaultIdProblem(id)).toBeUndefined();
      }),
      { numRuns: 10_000 },
    );
  });
});
