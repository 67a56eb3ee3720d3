import { describe, expect, it } from "vitest";
import { hmacSha256, LatchkeyError } from "@latchkey/core";
import { signBody, verifySignature } from "./signature.js";

const body = new TextEncoder().encode('{"userId":"u1"}');

function failure(fn: () => void): LatchkeyError {
  try {
    fn();
  } catch (error) {
    if (error instanceof LatchkeyError) return error;
    throw error;
  }
  throw new Error("expected a failure");
}

describe("response signature", () => {
  it("is base64 HMAC-SHA256 over the body keyed by SHA-256 of the token (core's implementation agrees)", async () => {
    const key = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("token-1")));
    const expected = Buffer.from(await hmacSha256(key, body)).toString("base64");
    expect(signBody("token-1", body)).toBe(expected);
    expect(() => verifySignature("token-1", body, expected, "GET /me")).not.toThrow();
  });

  it("refuses a missing, empty, non-base64, truncated or foreign signature", () => {
    const good = signBody("token-1", body);
    for (const header of [
      null,
      "",
      "%%%",
      good.slice(0, 43),
      good.replace(/=$/, ""),
      signBody("token-2", body),
    ]) {
      const error = failure(() => verifySignature("token-1", body, header, "GET /me"));
      expect(error.code).toBe("LK_SIGNATURE_INVALID");
      expect(error.message).toContain("X-Latchkey-Signature");
    }
  });
});
