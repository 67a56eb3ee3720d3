import { hmacSha256, toBase64, utf8Encode } from "@latchkey/core";
import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signatureKey, signBody } from "./signature.js";

describe("response signatures", () => {
  it("is HMAC-SHA256 over the body keyed by SHA-256 of the token (checked against WebCrypto)", async () => {
    const token = "eyJhbGciOi.token-with.ümlaut";
    const body = '{"vaultId":"x","note":"naïve ✓"}';
    const key = new Uint8Array(await crypto.subtle.digest("SHA-256", Buffer.from(token, "utf8")));
    expect(new Uint8Array(signatureKey(token))).toEqual(key);
    expect(signBody(token, body)).toBe(toBase64(await hmacSha256(key, utf8Encode(body))));
  });

  it("matches a fixed vector", () => {
    // HMAC-SHA256(key = SHA-256("token"), "{}"), computed once with openssl:
    // printf '{}' | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(printf token | sha256sum | cut -c1-64) -binary | base64
    expect(signBody("token", "{}")).toBe(FIXED);
  });

  it("signs the UTF-8 bytes of a string exactly as a Buffer of them", () => {
    const body = '{"name":"café"}';
    expect(signBody("t", body)).toBe(signBody("t", Buffer.from(body, "utf8")));
    // The same text in Latin-1 is different bytes and must not verify.
    expect(signBody("t", body)).not.toBe(signBody("t", Buffer.from(body, "latin1")));
  });

  it("changes with any flipped byte and with the token", () => {
    const body = Buffer.from('{"version":7,"encryptedBlob":"AAAA"}');
    const signature = signBody("token-a", body);
    for (let i = 0; i < body.length; i++) {
      const flipped = Buffer.from(body);
      flipped[i] = flipped[i]! ^ 0x01;
      expect(signBody("token-a", flipped)).not.toBe(signature);
    }
    expect(signBody("token-b", body)).not.toBe(signature);
    expect(Buffer.from(signature, "base64")).toHaveLength(32);
  });
});

describe("response signatures with many tokens", () => {
  it("stays correct for every token when more tokens are seen than keys are kept", () => {
    const independent = (token: string, body: string) =>
      createHmac("sha256", createHash("sha256").update(token).digest()).update(body).digest("base64");
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 1500; i++) {
        const token = `token-${i}`;
        expect(signBody(token, `{"i":${i}}`)).toBe(independent(token, `{"i":${i}}`));
      }
    }
  });
});

const FIXED = "O6cQ9TCU+M9cG2p5OlG9WmA4MGtMzr9hcYkpP0kU4xI=";
