// A loopback GitHub REST API for Actions secrets of a repository (/repos/{o}/{r}/actions/secrets…) and of a
// deployment environment (/repos/{o}/{r}/environments/{e}/secrets…): public-key, list (per_page, page), PUT and
// DELETE of one secret. It holds a real X25519 key pair per scope and opens every sealed box itself — X25519 from
// node:crypto, the nonce as BLAKE2b-192(ephemeral_pk || recipient_pk) and XSalsa20-Poly1305 from @noble, not
// libsodium — so a value the adapter sealed wrongly (or did not seal) is refused, not stored. It refuses a wrong
// bearer token (401), a missing Accept or X-GitHub-Api-Version header, a stale key_id, a body with other members,
// and a name GitHub would refuse (422).
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from "node:crypto";
import { xsalsa20poly1305, hsalsa } from "@noble/ciphers/salsa.js";
import { blake2b } from "@noble/hashes/blake2.js";
import {
  expectShape,
  isObject,
  jsonBody,
  startDouble,
  type Answer,
  type Double,
  type RecordedRequest,
} from "./double.js";

const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");

interface Scope {
  readonly keyId: string;
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
  readonly secrets: Map<string, string>;
}

/** A running GitHub double. */
export interface GithubDouble extends Double {
  /** The repository's secrets as the double decrypted them, name → value. */
  readonly repositorySecrets: Map<string, string>;
  /** An environment's secrets, decrypted (the scope exists once the double was started with it). */
  environmentSecrets(name: string): Map<string, string>;
  /** Names the double answers 422 for, to make a partial failure. */
  readonly refuseNames: Set<string>;
}

function keyPair(): { publicKey: Uint8Array; privateKey: Uint8Array } {
  const { publicKey, privateKey } = generateKeyPairSync("x25519");
  const pub = publicKey.export({ format: "jwk" }).x!;
  const priv = privateKey.export({ format: "jwk" }).d!;
  return { publicKey: Buffer.from(pub, "base64url"), privateKey: Buffer.from(priv, "base64url") };
}

/** Opens a libsodium sealed box without libsodium; null when it does not open. */
export function openSealedBox(
  sealed: Uint8Array,
  publicKey: Uint8Array,
  privateKey: Uint8Array,
): Uint8Array | null {
  if (sealed.length < 48) return null;
  const ephemeral = sealed.subarray(0, 32);
  const shared = diffieHellman({
    privateKey: createPrivateKey({
      key: Buffer.concat([PKCS8_X25519, privateKey]),
      format: "der",
      type: "pkcs8",
    }),
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_X25519, ephemeral]), format: "der", type: "spki" }),
  });
  // crypto_box_beforenm: k = HSalsa20(shared, 0^16) with the "expand 32-byte k" constants.
  const words = (bytes: Uint8Array) => new Uint32Array(new Uint8Array(bytes).buffer);
  const out = new Uint32Array(8);
  hsalsa(words(Buffer.from("expand 32-byte k")), words(shared), new Uint32Array(4), out);
  const nonce = blake2b(new Uint8Array([...ephemeral, ...publicKey]), { dkLen: 24 });
  try {
    return xsalsa20poly1305(new Uint8Array(out.buffer), nonce).decrypt(sealed.subarray(32));
  } catch {
    return null;
  }
}

/** Starts a GitHub double for `owner/repo` with the given deployment environments, accepting `token`. */
export async function startGithubDouble(options: {
  token: string;
  owner: string;
  repo: string;
  environments?: readonly string[];
}): Promise<GithubDouble> {
  let nextKey = 1;
  const scope = (): Scope => ({ keyId: `key-${nextKey++}`, ...keyPair(), secrets: new Map() });
  const repository = scope();
  const environments = new Map((options.environments ?? []).map((name) => [name, scope()]));
  const refuseNames = new Set<string>();
  const repoPath = `/repos/${options.owner}/${options.repo}`;

  const handle = (request: RecordedRequest): Answer => {
    if (request.headers.authorization !== `Bearer ${options.token}`)
      return { status: 401, body: { message: "Bad credentials" } };
    expectShape(
      request.headers.accept === "application/vnd.github+json",
      "Accept: application/vnd.github+json",
    );
    expectShape(request.headers["x-github-api-version"] === "2022-11-28", "X-GitHub-Api-Version: 2022-11-28");
    const url = new URL(request.url, "http://double");
    let target: Scope | undefined;
    let rest: string;
    if (url.pathname.startsWith(`${repoPath}/actions/secrets`)) {
      target = repository;
      rest = url.pathname.slice(`${repoPath}/actions/secrets`.length);
    } else {
      const env = new RegExp(`^${repoPath}/environments/([^/]+)/secrets(.*)$`).exec(url.pathname);
      if (env === null) return { status: 404, body: { message: "Not Found" } };
      target = environments.get(decodeURIComponent(env[1]!));
      rest = env[2]!;
      if (target === undefined) return { status: 404, body: { message: "Not Found" } };
    }
    if (rest === "/public-key" && request.method === "GET")
      return {
        status: 200,
        body: { key_id: target.keyId, key: Buffer.from(target.publicKey).toString("base64") },
      };
    if (rest === "" && request.method === "GET") {
      const perPage = Number(url.searchParams.get("per_page") ?? "30");
      const page = Number(url.searchParams.get("page") ?? "1");
      expectShape(perPage >= 1 && perPage <= 100 && page >= 1, "per_page 1..100 and page ≥ 1");
      const names = [...target.secrets.keys()].sort();
      const slice = names.slice((page - 1) * perPage, page * perPage);
      return {
        status: 200,
        body: {
          total_count: names.length,
          secrets: slice.map((name) => ({
            name,
            created_at: "2026-01-01T00:00:00Z",
            updated_at: "2026-01-01T00:00:00Z",
          })),
        },
      };
    }
    const one = /^\/([^/]+)$/.exec(rest);
    expectShape(one !== null, `no such endpoint ${url.pathname}`);
    const name = decodeURIComponent(one[1]!);
    if (request.method === "DELETE") {
      if (!target.secrets.delete(name)) return { status: 404, body: { message: "Not Found" } };
      return { status: 204 };
    }
    expectShape(request.method === "PUT", `${request.method} is not an endpoint of this API`);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || /^GITHUB_/i.test(name) || refuseNames.has(name))
      return { status: 422, body: { message: "Validation Failed" } };
    const body = jsonBody(request);
    expectShape(isObject(body), "the body is an object");
    expectShape(
      Object.keys(body).sort().join() === "encrypted_value,key_id",
      "the body is {encrypted_value, key_id}",
    );
    expectShape(body.key_id === target.keyId, "key_id must be the scope's current public key id");
    expectShape(typeof body.encrypted_value === "string", "encrypted_value is base64");
    const opened = openSealedBox(
      Buffer.from(body.encrypted_value, "base64"),
      target.publicKey,
      target.privateKey,
    );
    expectShape(opened !== null, "encrypted_value is not a sealed box for the scope's public key");
    const existed = target.secrets.has(name);
    target.secrets.set(name, Buffer.from(opened).toString("utf8"));
    return { status: existed ? 204 : 201 };
  };

  const double = await startDouble(handle);
  return Object.assign(double, {
    repositorySecrets: repository.secrets,
    environmentSecrets: (name: string) => environments.get(name)!.secrets,
    refuseNames,
  });
}
