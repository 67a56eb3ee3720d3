// docker-credential-latchkey: docker's credential-helper protocol over Latchkey's keystore.
//
// The protocol is docker/docker-credential-helpers' (credentials/credentials.go, client/client.go): the action is
// the one argument; `store` reads {"ServerURL","Username","Secret"} as JSON on stdin; `get` and `erase` read a
// server URL on stdin (surrounding whitespace trimmed, as credentials.Get does); `list` prints {serverURL:
// username}. Docker runs the helper with its stderr passed through to the user but reads only stdout: a failure is
// a non-zero exit with a one-line message on stdout, and two messages are matched literally by docker's client —
// `credentials not found in native keychain` (a miss, which docker treats as "not logged in") and
// `no credentials server URL` / `no credentials username` (malformed requests).
//
// Each server URL is one keystore account, `docker:<serverURL>`, holding {"Username","Secret"} as JSON. The URL
// is the exact string docker sent, trimmed: like the secretservice, pass and wincred helpers, nothing else is
// normalised, because docker itself asks for the same string it stored (and `docker logout` erases every variant
// it might have used).
import { LatchkeyError, isLatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { printError } from "../output/output.js";
import { parseJsonTree } from "../project/json-edit.js";
import { VERSION } from "../version.js";

/** The bin's name, as docker derives it from `"credsStore": "latchkey"`. */
export const DOCKER_HELPER_NAME = "docker-credential-latchkey";
/** Docker's client matches this message literally to mean "no credentials for that server". */
export const DOCKER_NOT_FOUND_MESSAGE = "credentials not found in native keychain";
/** docker-credential-helpers' messages for a request without a server URL or a username, also matched literally. */
export const DOCKER_MISSING_SERVER_URL_MESSAGE = "no credentials server URL";
export const DOCKER_MISSING_USERNAME_MESSAGE = "no credentials username";
/** Every docker entry's keystore account starts with this. */
export const DOCKER_ACCOUNT_PREFIX = "docker:";

// Generous for any real server URL, user name or identity token; anything bigger is not from docker.
const MAX_INPUT_BYTES = 1024 * 1024;
const MAX_SERVER_URL_LENGTH = 2048;
const MAX_USERNAME_LENGTH = 1024;

/** One set of credentials as docker hands them over. */
export interface DockerCredentials {
  readonly ServerURL: string;
  readonly Username: string;
  readonly Secret: string;
}

/** The keystore account of a server URL's credentials. */
export function dockerAccount(serverURL: string): string {
  return `${DOCKER_ACCOUNT_PREFIX}${serverURL}`;
}

// A failure whose stdout line docker's client recognises; anything else gets `CODE: message` on stdout.
class ProtocolError extends LatchkeyError {
  readonly protocolMessage: string;
  constructor(code: "LK_HELPER_INPUT_INVALID" | "LK_USAGE", protocolMessage: string, message: string) {
    super(code, { message, hint: code === "LK_USAGE" ? `Run \`${DOCKER_HELPER_NAME} --help\`.` : HINT });
    this.protocolMessage = protocolMessage;
  }
}

function invalid(message: string): LatchkeyError {
  return new LatchkeyError("LK_HELPER_INPUT_INVALID", { message, hint: HINT });
}

const HINT =
  'docker runs this helper itself: set "credsStore": "latchkey" (or a "credHelpers" entry) in ~/.docker/config.json and use `docker login` / `docker logout`.';

/**
 * True when `text` holds a C0 control, DEL or a C1 control: none belongs in a URL or a user name, and CR/LF could
 * split a line that another tool logs or parses.
 */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/**
 * Validates a server URL exactly as given (surrounding whitespace is refused). Strict where docker-credential-helpers' registryurl.Parse is (an
 * http(s) scheme or none, a host name), and stricter on characters; the string itself is kept as given.
 */
export function validateServerURL(serverURL: string): string {
  if (serverURL === "") {
    throw new ProtocolError(
      "LK_HELPER_INPUT_INVALID",
      DOCKER_MISSING_SERVER_URL_MESSAGE,
      "The request names no server URL (docker sends one, e.g. `ghcr.io` or `https://index.docker.io/v1/`).",
    );
  }
  if (serverURL.length > MAX_SERVER_URL_LENGTH) throw invalid("The server URL is too long.");
  if (hasControlCharacter(serverURL) || /\s/.test(serverURL)) {
    throw invalid("The server URL contains whitespace or a control character.");
  }
  // registryurl.Parse reads a string without `://` as a bare host (it prefixes `//`); WHATWG URL parsing would
  // quietly repair `https:///x` into host `x`, so the authority is cut out by hand and checked on its own.
  const match = /^(?:([A-Za-z][A-Za-z0-9+.-]*):\/\/)?([^/?#]*)/.exec(serverURL);
  const scheme = match?.[1]?.toLowerCase();
  const authority = match?.[2] ?? "";
  if (scheme !== undefined && scheme !== "https" && scheme !== "http") {
    throw invalid("The server URL's scheme is not http or https.");
  }
  if (authority === "") throw invalid("The server URL has no host name.");
  if (authority.includes("@")) throw invalid("The server URL carries user information.");
  let hostname = "";
  try {
    hostname = new URL(`https://${authority}`).hostname;
  } catch {
    // reported below
  }
  if (hostname === "") throw invalid("The server URL's host is not a host name.");
  return serverURL;
}

function decodeInput(bytes: Uint8Array): string {
  if (bytes.byteLength > MAX_INPUT_BYTES) throw invalid("The input is larger than 1 MiB.");
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw invalid("The input is not UTF-8.");
  }
}

/**
 * Parses the server URL that `get` and `erase` read: one line, surrounding whitespace trimmed like
 * credentials.Get; a line break or control character inside it is refused (credentials.Get would silently join
 * the lines).
 */
export function parseServerURLInput(bytes: Uint8Array): string {
  return validateServerURL(decodeInput(bytes).trim());
}

/**
 * Parses `store`'s input: one JSON object with exactly the string members ServerURL, Username and Secret.
 * docker sends exactly those; unknown or duplicated members, other types or an empty secret are refused rather
 * than guessed at. Error messages never repeat the input: it holds the secret.
 */
export function parseStoreInput(bytes: Uint8Array): DockerCredentials {
  const text = decodeInput(bytes).trim();
  try {
    // Rejects what JSON.parse would quietly accept: duplicate members, where tools disagree on which one wins.
    parseJsonTree(text);
  } catch {
    throw invalid('The input is not one JSON object {"ServerURL", "Username", "Secret"}.');
  }
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalid('The input is not a JSON object {"ServerURL", "Username", "Secret"}.');
  }
  const record = value as Record<string, unknown>;
  const allowed = new Set(["ServerURL", "Username", "Secret"]);
  const unknown = Object.keys(record).filter((key) => !allowed.has(key)).length;
  if (unknown > 0) {
    throw invalid(`The input has ${unknown} member(s) besides ServerURL, Username and Secret.`);
  }
  for (const key of allowed) {
    if (key in record && typeof record[key] !== "string") throw invalid(`${key} is not a string.`);
  }
  // Not trimmed: credentials.Store keeps the string as sent, so surrounding whitespace is refused below.
  const serverURL = validateServerURL((record.ServerURL as string | undefined) ?? "");
  const username = (record.Username as string | undefined) ?? "";
  if (username === "") {
    throw new ProtocolError(
      "LK_HELPER_INPUT_INVALID",
      DOCKER_MISSING_USERNAME_MESSAGE,
      "The request names no Username.",
    );
  }
  if (username.length > MAX_USERNAME_LENGTH || hasControlCharacter(username)) {
    throw invalid("The Username is too long or contains a control character.");
  }
  const secret = (record.Secret as string | undefined) ?? "";
  if (secret === "") throw invalid("The Secret is empty.");
  if (secret.includes("\u0000")) throw invalid("The Secret contains a NUL character.");
  return { ServerURL: serverURL, Username: username, Secret: secret };
}

/** What a `docker:` entry holds; anything else under that prefix was not written by this helper. */
function parseStored(account: string, value: string): { Username: string; Secret: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  const record = parsed as Record<string, unknown> | undefined;
  if (
    typeof record !== "object" ||
    record === null ||
    typeof record.Username !== "string" ||
    typeof record.Secret !== "string"
  ) {
    throw new LatchkeyError("LK_STORE_CORRUPT", {
      message: `The keystore entry ${account} is not docker credentials written by ${DOCKER_HELPER_NAME}.`,
      hint: `Remove it with \`latchkey keystore delete ${account}\` and run \`docker login\` again.`,
    });
  }
  return { Username: record.Username, Secret: record.Secret };
}

async function store(ctx: Context): Promise<void> {
  const credentials = parseStoreInput(await ctx.stdin.readAll());
  const { keystore } = await ctx.keystore();
  await keystore.set(
    dockerAccount(credentials.ServerURL),
    JSON.stringify({ Username: credentials.Username, Secret: credentials.Secret }),
  );
}

async function get(ctx: Context): Promise<boolean> {
  const serverURL = parseServerURLInput(await ctx.stdin.readAll());
  const { keystore } = await ctx.keystore();
  const account = dockerAccount(serverURL);
  const value = await keystore.get(account);
  if (value === null) return false;
  const stored = parseStored(account, value);
  // The same shape and trailing newline as credentials.Get's json.Encoder.
  ctx.stdout.write(
    `${JSON.stringify({ ServerURL: serverURL, Username: stored.Username, Secret: stored.Secret })}\n`,
  );
  return true;
}

async function erase(ctx: Context): Promise<void> {
  const serverURL = parseServerURLInput(await ctx.stdin.readAll());
  const { keystore } = await ctx.keystore();
  // Erasing what is not there succeeds, as with the secretservice and pass helpers: `docker logout` erases
  // every spelling of the server it might have stored under (host, http://host, https://host).
  await keystore.delete(dockerAccount(serverURL));
}

async function list(ctx: Context): Promise<void> {
  const { keystore } = await ctx.keystore();
  const out: Record<string, string> = {};
  for (const account of await keystore.list()) {
    if (!account.startsWith(DOCKER_ACCOUNT_PREFIX)) continue;
    const value = await keystore.get(account);
    // Deleted between list and get by another process: it is simply not there any more.
    if (value === null) continue;
    out[account.slice(DOCKER_ACCOUNT_PREFIX.length)] = parseStored(account, value).Username;
  }
  ctx.stdout.write(`${JSON.stringify(out)}\n`);
}

const USAGE =
  `Usage: ${DOCKER_HELPER_NAME} <store|get|erase|list|version>\n\n` +
  "docker's credential helper, backed by Latchkey's keystore (the OS keychain, or Latchkey's encrypted file store).\n" +
  "docker runs it; you do not need to. To use it, add to ~/.docker/config.json:\n" +
  '  { "credsStore": "latchkey" }                         every registry\n' +
  '  { "credHelpers": { "ghcr.io": "latchkey" } }          one registry\n' +
  "then `docker login REGISTRY` stores the credentials here, never in config.json.\n\n" +
  '  store   reads {"ServerURL","Username","Secret"} as JSON on stdin\n' +
  '  get     reads a server URL on stdin, prints {"ServerURL","Username","Secret"}\n' +
  `          (exits 1 with "${DOCKER_NOT_FOUND_MESSAGE}" when there are none)\n` +
  "  erase   reads a server URL on stdin and removes its credentials\n" +
  "  list    prints {serverURL: username} for every stored server\n" +
  "  version prints the version\n\n" +
  "Entries live in the keystore as docker:<serverURL>; `latchkey keystore list` shows them.\n";

/**
 * Runs one helper invocation (`args` without node and script). Returns the exit code: 0 done, 1 no credentials
 * for that server, otherwise the catalogue's code. Never throws.
 */
export async function runDockerCredentialHelper(args: readonly string[], ctx: Context): Promise<number> {
  const [action] = args;
  if (args.length === 1 && (action === "--help" || action === "-h" || action === "help")) {
    ctx.stdout.write(USAGE);
    return 0;
  }
  try {
    if (args.length !== 1) {
      throw new ProtocolError(
        "LK_USAGE",
        `Usage: ${DOCKER_HELPER_NAME} <store|get|erase|list|version>`,
        `Expected exactly one action (store, get, erase, list or version), got ${args.length} arguments.`,
      );
    }
    switch (action) {
      case "store":
        await store(ctx);
        return 0;
      case "get":
        if (await get(ctx)) return 0;
        // A miss is routine (docker asks before every pull): the literal message docker expects, nothing on stderr.
        ctx.stdout.write(`${DOCKER_NOT_FOUND_MESSAGE}\n`);
        return 1;
      case "erase":
        await erase(ctx);
        return 0;
      case "list":
        await list(ctx);
        return 0;
      case "version":
        ctx.stdout.write(`${DOCKER_HELPER_NAME} (latchkey) ${VERSION}\n`);
        return 0;
      default:
        throw new LatchkeyError("LK_USAGE", {
          message: "Unknown credential action: expected store, get, erase, list or version.",
          hint: `Run \`${DOCKER_HELPER_NAME} --help\`.`,
        });
    }
  } catch (error) {
    const shown = isLatchkeyError(error) ? error : new LatchkeyError("LK_INTERNAL", { cause: error });
    // docker shows stdout's line inside its own error; the catalogue's full message and hint go to stderr,
    // which docker passes through to the user.
    ctx.stdout.write(
      `${error instanceof ProtocolError ? error.protocolMessage : `${shown.code}: ${shown.message}`}\n`,
    );
    return printError(ctx, error, 0);
  }
}
