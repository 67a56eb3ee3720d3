import { describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import {
  MAX_ENVIRONMENT_BYTES,
  MAX_VALUE_BYTES,
  MAX_VAULT_BYTES,
  checkVaultSize,
  tooLargeForEnvironment,
} from "./limits.js";
import type { VaultDocument } from "./vault-store.js";

function refusal(document: VaultDocument, point: "store" | "push" = "store"): LatchkeyError | null {
  try {
    checkVaultSize(document, point);
    return null;
  } catch (error) {
    if (!(error instanceof LatchkeyError)) throw error;
    return error;
  }
}

const MiB = 1024 * 1024;

describe("vault size limits", () => {
  it("are the documented 1 MiB per value, 2 MiB per environment and 5 MiB per vault", () => {
    expect([MAX_VALUE_BYTES, MAX_ENVIRONMENT_BYTES, MAX_VAULT_BYTES]).toEqual([MiB, 2 * MiB, 5 * MiB]);
  });

  it("accept a value of exactly 1 MiB and refuse one byte more, naming key, environment, size and limit", () => {
    expect(refusal({ default: { BIG: "v".repeat(MiB) } })).toBeNull();
    const error = refusal({ staging: { BIG: "v".repeat(MiB + 1) } });
    expect(error?.code).toBe("LK_VAULT_TOO_LARGE");
    expect(error?.message).toBe(
      "BIG in staging is 1,048,577 bytes; a secret may be at most 1 MiB (1,048,576 bytes). Nothing was stored.",
    );
  });

  it("refuse an environment over 2 MiB of names and values", () => {
    const env = { A: "a".repeat(MiB - 10), B: "b".repeat(MiB - 10), C: "c".repeat(100) };
    const error = refusal({ default: env }, "push");
    expect(error?.message).toMatch(
      /^The environment default would hold 2,097,235 bytes of names and values; an environment may hold at most 2 MiB/,
    );
    expect(error?.message).toContain("Nothing was sent.");
  });

  it("refuse a vault over 5 MiB as JSON, naming the largest environments", () => {
    const env = (c: string) => ({ A: c.repeat(MiB - 8), B: c.repeat(MiB - 8) });
    const error = refusal({ one: env("1"), two: env("2"), three: env("3") }, "push");
    expect(error?.code).toBe("LK_VAULT_TOO_LARGE");
    expect(error?.message).toMatch(/^The vault would be 6,29\d,\d\d\d bytes; a vault may be at most 5 MiB/);
    expect(error?.message).toContain("The largest environments: one (2,097,138 bytes)");
  });

  it("tell which values are too large for an environment variable on Linux (NAME=VALUE and a NUL over 128 KiB)", () => {
    expect(tooLargeForEnvironment("K", "v".repeat(131_069))).toBeNull();
    expect(tooLargeForEnvironment("K", "v".repeat(131_070))).toBe(131_073);
    expect(tooLargeForEnvironment("K", "é".repeat(65_535))).toBe(131_073);
  });
});
