import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { renderErrorsMarkdown } from "./errors-doc.js";
import { LatchkeyError, errorCatalogue } from "./errors.js";

describe("error catalogue", () => {
  it("docs/errors.md matches the catalogue (run `npm run docs` to regenerate)", () => {
    const committed = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");
    expect(committed).toBe(renderErrorsMarkdown());
  });

  it("gives every code a message, a hint and a non-zero exit code", () => {
    for (const [code, spec] of Object.entries(errorCatalogue)) {
      expect(code).toMatch(/^LK_[A-Z0-9_]+$/);
      expect(spec.message.length).toBeGreaterThan(0);
      expect(spec.hint.length).toBeGreaterThan(0);
      expect(spec.exitCode).toBeGreaterThan(0);
    }
  });

  it("builds errors with catalogue defaults and per-instance overrides", () => {
    const plain = new LatchkeyError("LK_KEYRING_LOCKED");
    expect(plain.code).toBe("LK_KEYRING_LOCKED");
    expect(plain.message).toBe(errorCatalogue.LK_KEYRING_LOCKED.message);
    expect(plain.hint).toBe(errorCatalogue.LK_KEYRING_LOCKED.hint);
    expect(plain.exitCode).toBe(3);
    const custom = new LatchkeyError("LK_USAGE", { message: "Bad flag --x.", hint: "Drop it." });
    expect(custom.toJSON()).toEqual({ code: "LK_USAGE", message: "Bad flag --x.", hint: "Drop it." });
  });
});
