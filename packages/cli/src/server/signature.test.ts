import { describe, expect, it } from "vitest";
import { hmacSha256, LatchkeyError, signaturePreamble, type SignedRequest } from "@latchkey/core";
import { signResponse, verifySignature } from "./signature.js";

const body = new TextEncoder().encode('{"userId":"u1"}');
const request: SignedRequest = {
  method: "GET",
  path: "/api/v1/me",
  requestId: "AAECAwQFBgcICQoLDA0ODw",
  status: 200,
};

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
  it("is base64 HMAC-SHA256 over the preamble and the body keyed by SHA-256 of the token (core's HMAC agrees)", async () => {
    const key = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("token-1")));
    const signed = new Uint8Array([...new TextEncoder().encode(signaturePreamble(request)), ...body]);
    const expected = Buffer.from(await hmacSha256(key, signed)).toString("base64");
    expect(signResponse("token-1", request, body)).toBe(expected);
    expect(() => verifySignature("token-1", request, body, expected, "GET /me")).not.toThrow();
  });

  it("refuses a missing, empty, non-base64, truncated or foreign signature", () => {
    const good = signResponse("token-1", request, body);
    for (const header of [
      null,
      "",
      "%%%",
      good.slice(0, 43),
      good.replace(/=$/, ""),
      signResponse("token-2", request, body),
    ]) {
      const error = failure(() => verifySignature("token-1", request, body, header, "GET /me"));
      expect(error.code).toBe("LK_SIGNATURE_INVALID");
      expect(error.message).toContain("X-Latchkey-Signature");
    }
  });

  it("refuses a signature made for another request id, method, path or status", () => {
    const others: SignedRequest[] = [
      { ...request, requestId: "AAECAwQFBgcICQoLDA0OEA" },
      { ...request, method: "PUT" },
      { ...request, path: "/api/v1/vaults/x" },
      { ...request, path: "/api/v1/me?x=1" },
      { ...request, status: 201 },
    ];
    for (const other of others) {
      const header = signResponse("token-1", other, body);
      const error = failure(() => verifySignature("token-1", request, body, header, "GET /me"));
      expect(error.message, JSON.stringify(other)).toContain("does not match this request");
    }
  });
});
