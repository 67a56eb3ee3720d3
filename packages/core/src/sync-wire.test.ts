import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  canonicalVaultId,
  isRequestId,
  responseSignatureValid,
  signaturePreamble,
  syncBlobContext,
  vaultKeyContext,
  type SignedRequest,
} from "./sync-wire.js";

const ok: SignedRequest = {
  method: "PUT",
  path: "/api/v1/vaults/0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e",
  requestId: "AAECAwQFBgcICQoLDA0ODw",
  status: 200,
};

describe("signaturePreamble", () => {
  it("is the version, method, path, request id and status, one per line", () => {
    expect(signaturePreamble(ok)).toBe(
      "latchkey-sig-v2\nPUT\n/api/v1/vaults/0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e\nAAECAwQFBgcICQoLDA0ODw\n200\n",
    );
    expect(signaturePreamble({ ...ok, method: "GET", path: "/api/v1/vaults/x/log?limit=5" })).toBe(
      "latchkey-sig-v2\nGET\n/api/v1/vaults/x/log?limit=5\nAAECAwQFBgcICQoLDA0ODw\n200\n",
    );
  });

  it("refuses a field that could hold a line break or is outside its shape, so one preamble reads one way", () => {
    for (const bad of [
      { method: "get" },
      { method: "GE\nT" },
      { method: "" },
      { path: "api/v1/me" },
      { path: "/api/v1/me\n200" },
      { path: "/api/v1/me x" },
      { path: "/api/v1/caf\u00e9" },
      { requestId: "short" },
      { requestId: `${"A".repeat(22)}\n` },
      { requestId: "A".repeat(65) },
      { status: 99 },
      { status: 600 },
      { status: 200.5 },
    ]) {
      expect(() => signaturePreamble({ ...ok, ...bad }), JSON.stringify(bad)).toThrow(/signaturePreamble/);
    }
  });
});

describe("isRequestId", () => {
  it("takes 22 to 64 base64url characters (a UUID too) and nothing else", () => {
    expect(isRequestId(Buffer.alloc(16, 7).toString("base64url"))).toBe(true);
    expect(isRequestId("0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e")).toBe(true);
    expect(isRequestId("A".repeat(64))).toBe(true);
    for (const bad of [
      "",
      "A".repeat(21),
      "A".repeat(65),
      `${"A".repeat(22)}=`,
      `${"A".repeat(21)}+`,
      "A".repeat(21) + "/",
    ]) {
      expect(isRequestId(bad), bad).toBe(false);
    }
  });
});

describe("vault id spelling", () => {
  it("is lower case, and only ASCII letters change", () => {
    expect(canonicalVaultId("0B6F5C1E-4A6B-4D1C-9D2E-3F4A5B6C7D8E")).toBe(
      "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e",
    );
    expect(canonicalVaultId("My_Vault-1")).toBe("my_vault-1");
    expect(canonicalVaultId("\u0130x")).toBe("\u0130x");
  });

  it("gives a pushed blob the same associated data however the id is spelled", () => {
    const upper = "0B6F5C1E-4A6B-4D1C-9D2E-3F4A5B6C7D8E";
    expect(syncBlobContext(upper, 3)).toEqual(syncBlobContext(upper.toLowerCase(), 3));
    expect(syncBlobContext(upper, 3)).not.toEqual(syncBlobContext(upper.toLowerCase(), 4));
  });

  it("binds an organisation's copy to its slug, apart from the personal copy and from other organisations", () => {
    const id = "0b6f5c1e-4a6b-4d1c-9d2e-3f4a5b6c7d8e";
    expect(syncBlobContext(id, 3, "acme")).toEqual(syncBlobContext(id, 3, "acme"));
    expect(syncBlobContext(id, 3, "acme")).not.toEqual(syncBlobContext(id, 3));
    expect(syncBlobContext(id, 3, "acme")).not.toEqual(syncBlobContext(id, 3, "beta"));
  });

  it("gives a wrapped vault key the associated data every machine's keystore has used, for the id's one spelling", () => {
    const upper = "0B6F5C1E-4A6B-4D1C-9D2E-3F4A5B6C7D8E";
    // The exact bytes: "LKA" 1, two fields sorted by name (purpose, vault), each as length, name, type, length, value.
    const field = (name: string, value: string): number[] => [
      ...[0, 0, 0, name.length],
      ...Buffer.from(name),
      0x73,
      ...[0, 0, 0, value.length],
      ...Buffer.from(value),
    ];
    const expected = [
      ...[0x4c, 0x4b, 0x41, 0x01, 0, 0, 0, 2],
      ...field("purpose", "latchkey-vault-key"),
      ...field("vault", upper.toLowerCase()),
    ];
    expect([...vaultKeyContext(upper)]).toEqual(expected);
    expect(vaultKeyContext(upper)).not.toEqual(syncBlobContext(upper, 1));
  });
});

describe("responseSignatureValid", () => {
  const token = "a-bearer-token-0123456789abcdefghij";
  const body = new TextEncoder().encode('{"vaultId":"v","version":3}');
  // The signature as the server makes it (packages/server/src/api/signature.ts), with Node's own HMAC.
  const nodeSignature = (request: SignedRequest, bytes: Uint8Array, key = token): string => {
    const hmacKey = createHash("sha256").update(key, "utf8").digest();
    return createHmac("sha256", hmacKey)
      .update(signaturePreamble(request), "utf8")
      .update(bytes)
      .digest("base64");
  };

  it("accepts the server's signature of this answer to this request", async () => {
    expect(await responseSignatureValid(token, ok, body, nodeSignature(ok, body))).toBe(true);
    expect(await responseSignatureValid(token, ok, body, ` ${nodeSignature(ok, body)} `)).toBe(true);
  });

  it("refuses a missing or malformed header, another body, request, status or token", async () => {
    const good = nodeSignature(ok, body);
    for (const header of [null, "", good.slice(0, -2), `${good}A`, good.replace(/=$/, "")])
      expect(await responseSignatureValid(token, ok, body, header), String(header)).toBe(false);
    expect(await responseSignatureValid(token, ok, new TextEncoder().encode("{}"), good)).toBe(false);
    for (const other of [
      { ...ok, method: "GET" },
      { ...ok, path: `${ok.path}/log` },
      { ...ok, requestId: "BAECAwQFBgcICQoLDA0ODw" },
      { ...ok, status: 201 },
    ])
      expect(await responseSignatureValid(token, other, body, good)).toBe(false);
    expect(await responseSignatureValid(`${token}x`, ok, body, good)).toBe(false);
  });
});
