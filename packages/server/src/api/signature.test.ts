import { hmacSha256, signaturePreamble, toBase64, utf8Encode, type SignedRequest } from "@latchkey/core";
import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signatureKey, signResponse } from "./signature.js";

const request: SignedRequest = {
  method: "GET",
  path: "/api/v1/vaults/0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e",
  requestId: "AAECAwQFBgcICQoLDA0ODw",
  status: 200,
};

describe("response signatures", () => {
  it("is HMAC-SHA256 over the preamble and the body keyed by SHA-256 of the token (checked against WebCrypto)", async () => {
    const token = "eyJhbGciOi.token-with.ümlaut";
    const body = '{"vaultId":"x","note":"naïve ✓"}';
    const key = new Uint8Array(await crypto.subtle.digest("SHA-256", Buffer.from(token, "utf8")));
    expect(new Uint8Array(signatureKey(token))).toEqual(key);
    const signed = utf8Encode(signaturePreamble(request) + body);
    expect(signResponse(token, request, body)).toBe(toBase64(await hmacSha256(key, signed)));
  });

  it("matches a fixed vector", () => {
    // HMAC-SHA256(key = SHA-256("token"), preamble + "{}"), computed once with openssl:
    // printf 'latchkey-sig-v2\nGET\n/api/v1/me\nAAECAwQFBgcICQoLDA0ODw\n200\n{}' | openssl dgst -sha256 -mac HMAC \
    //   -macopt hexkey:$(printf token | sha256sum | cut -c1-64) -binary | base64
    expect(signResponse("token", { ...request, path: "/api/v1/me" }, "{}")).toBe(FIXED);
  });

  it("signs the UTF-8 bytes of a string exactly as a Buffer of them", () => {
    const body = '{"name":"café"}';
    expect(signResponse("t", request, body)).toBe(signResponse("t", request, Buffer.from(body, "utf8")));
    // The same text in Latin-1 is different bytes and must not verify.
    expect(signResponse("t", request, body)).not.toBe(
      signResponse("t", request, Buffer.from(body, "latin1")),
    );
  });

  it("changes with any flipped byte, the token, and every part of the request", () => {
    const body = Buffer.from('{"version":7,"encryptedBlob":"AAAA"}');
    const signature = signResponse("token-a", request, body);
    for (let i = 0; i < body.length; i++) {
      const flipped = Buffer.from(body);
      flipped[i] = flipped[i]! ^ 0x01;
      expect(signResponse("token-a", request, flipped)).not.toBe(signature);
    }
    expect(signResponse("token-b", request, body)).not.toBe(signature);
    for (const other of [
      { method: "PUT" },
      { path: `${request.path}/log` },
      { requestId: "AAECAwQFBgcICQoLDA0OEA" },
      { status: 201 },
    ]) {
      expect(signResponse("token-a", { ...request, ...other }, body), JSON.stringify(other)).not.toBe(
        signature,
      );
    }
    expect(Buffer.from(signature, "base64")).toHaveLength(32);
  });
});

describe("response signatures with many tokens", () => {
  it("stays correct for every token when more tokens are seen than keys are kept", () => {
    const independent = (token: string, body: string) =>
      createHmac("sha256", createHash("sha256").update(token).digest())
        .update(signaturePreamble(request))
        .update(body)
        .digest("base64");
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 1500; i++) {
        const token = `token-${i}`;
        expect(signResponse(token, request, `{"i":${i}}`)).toBe(independent(token, `{"i":${i}}`));
      }
    }
  });
});

const FIXED = "dPilVVfZy8eIKTArEUX2RKz/r9dyE9UA+LeFz/8U+qs=";
