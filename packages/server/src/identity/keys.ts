/**
 * Every key the identity slice uses, derived from the server secret with HKDF-SHA256 (RFC 5869), so every
 * process started with the same LATCHKEY_SERVER_SECRET (or the same data directory) signs, seals and checks
 * alike: the provider's signing key (Ed25519), its cookie keys, the TOTP sealing key, the login-step tickets and
 * the keys of step-up proofs and of CI access tokens.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type JsonWebKey,
} from "node:crypto";

const SALT = "latchkey-server identity v1";

/** The keys of one server secret. */
export interface IdentityKeys {
  /** The provider's private signing JWK (Ed25519, `kid` fixed by the key). */
  signingJwk: JsonWebKey & { kid: string; alg: string; use: string };
  /** oidc-provider's cookie signing keys (newest first). */
  cookieKeys: string[];
  /** Seals a TOTP secret for `userId` (AES-256-GCM, the user id as associated data). */
  sealTotp(userId: string, secret: string): string;
  /** Opens what sealTotp made; throws when it was sealed for another user or another server secret. */
  openTotp(userId: string, sealed: string): string;
  /** A MAC over `parts` (the login's password-step ticket). */
  mac(...parts: string[]): Buffer;
  /**
   * The HS256 key of step-up proofs (api/step-up-proof.ts): they say "this user re-authenticated just now", which
   * only this server (any process with the same secret) can mint or check.
   */
  stepUpKey: Uint8Array;
  /**
   * The HS256 key of CI access tokens (ci/access-token.ts): minted by the CI exchange, taken only by the CI pull.
   * A key of its own, so no token of one kind can ever verify as the other.
   */
  ciAccessKey: Uint8Array;
}

function derive(secret: string, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(secret, "utf8"), SALT, info, length));
}

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows (RFC 8410). */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** Derives every identity key from `secret`. */
export function deriveIdentityKeys(secret: string): IdentityKeys {
  const seed = derive(secret, "oidc signing key ed25519");
  const jwk = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  }).export({ format: "jwk" });
  const kid = createHmac("sha256", "kid")
    .update(jwk.x ?? "")
    .digest("base64url")
    .slice(0, 16);
  const totpKey = derive(secret, "totp secret sealing");
  const macKey = derive(secret, "login step ticket");
  return {
    signingJwk: { ...jwk, kid, alg: "EdDSA", use: "sig" },
    cookieKeys: [derive(secret, "oidc cookie keys").toString("base64url")],
    sealTotp(userId, plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", totpKey, iv);
      cipher.setAAD(Buffer.from(`totp:${userId}`, "utf8"));
      const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `v1:${iv.toString("base64")}:${body.toString("base64")}`;
    },
    openTotp(userId, sealed) {
      const [version, ivText, bodyText] = sealed.split(":");
      if (version !== "v1" || ivText === undefined || bodyText === undefined)
        throw new Error("unknown TOTP secret format");
      const iv = Buffer.from(ivText, "base64");
      const body = Buffer.from(bodyText, "base64");
      const decipher = createDecipheriv("aes-256-gcm", totpKey, iv);
      decipher.setAAD(Buffer.from(`totp:${userId}`, "utf8"));
      decipher.setAuthTag(body.subarray(body.length - 16));
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString(
        "utf8",
      );
    },
    mac: (...parts) => createHmac("sha256", macKey).update(parts.join("\u0000")).digest(),
    stepUpKey: new Uint8Array(derive(secret, "step-up proof hs256")),
    ciAccessKey: new Uint8Array(derive(secret, "ci access token hs256")),
  };
}

/** Constant-time comparison of two MACs of any length. */
export function macEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
