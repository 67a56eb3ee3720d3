// A minimal D-Bus client, just enough to read one secret from the Secret Service
// (https://specifications.freedesktop.org/secret-service-spec/latest/) straight over the session bus socket.
//
// Why it exists: reading through @napi-rs/keyring costs the module load (~3.5 ms), its synchronous entry constructor
// (~8 ms: a libdbus connection plus a Diffie-Hellman Secret Service session) and a trip through the thread pool. On
// `latchkey token` that is most of the command. This client costs one socket, four small messages and no native code.
// It only reads, and only the plain case; anything unusual is handed back to the native path (see SecretServiceRead),
// so behaviour and errors stay the library's.
//
// What it finds is what keyring-rs finds: @napi-rs/keyring 2.1.2 (keyring-core's dbus-secret-service store) writes
// items whose attributes are exactly {service, username} and looks them up with Service.SearchItems on those two,
// across every collection (measured against gnome-keyring: secret-service.test.ts checks it).
//
// Also here: the session bus address logic, shared with keyring.ts (whose check before loading the native module
// must look at the same socket as this client).
import { statSync } from "node:fs";
import { join } from "node:path";
import { LatchkeyError } from "@latchkey/core";

// ---------------------------------------------------------------------------------------------------------------
// The session bus address.

/** The platforms whose keychain is the Secret Service on the D-Bus session bus. */
export const SESSION_BUS_PLATFORMS: ReadonlySet<string> = new Set(["linux", "freebsd", "openbsd"]);

/** D-Bus address escaping: bytes outside the optionally-escaped set become %xx. */
function escapeAddressValue(value: string): string {
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const char = String.fromCharCode(byte);
    out += /[-0-9A-Za-z_/.\\*]/.test(char) ? char : `%${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/**
 * The socket a single `unix:path=` / `unix:abstract=` address names (an abstract name with its leading NUL, as
 * node:net takes it); null for any other address.
 */
export function unixSocketOf(address: string): string | null {
  if (address.includes(";") || !address.startsWith("unix:")) return null;
  for (const pair of address.slice("unix:".length).split(",")) {
    const eq = pair.indexOf("=");
    if (eq < 0) continue;
    const key = pair.slice(0, eq);
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return null;
    }
    if (key === "path") return value;
    if (key === "abstract") return `\0${value}`;
  }
  return null;
}

/** `$XDG_RUNTIME_DIR/bus` as an address, when that socket exists. */
function userBusAddress(env: NodeJS.ProcessEnv): string | null {
  const runtimeDir = env.XDG_RUNTIME_DIR;
  if (runtimeDir === undefined || runtimeDir === "") return null;
  const path = join(runtimeDir, "bus");
  try {
    return statSync(path).isSocket() ? `unix:path=${escapeAddressValue(path)}` : null;
  } catch {
    return null;
  }
}

/**
 * The session bus address: DBUS_SESSION_BUS_ADDRESS, else `$XDG_RUNTIME_DIR/bus` when that socket exists (then
 * written back to DBUS_SESSION_BUS_ADDRESS). Throws LK_KEYRING_UNREACHABLE when there is neither.
 */
export function sessionBusAddress(): string {
  const address = process.env.DBUS_SESSION_BUS_ADDRESS;
  if (address !== undefined && address !== "") return address;
  const fallback = userBusAddress(process.env);
  if (fallback === null) {
    throw new LatchkeyError("LK_KEYRING_UNREACHABLE", {
      message:
        "No D-Bus session: DBUS_SESSION_BUS_ADDRESS is not set and $XDG_RUNTIME_DIR/bus does not exist.",
    });
  }
  // The vendored libdbus does not look for $XDG_RUNTIME_DIR/bus itself (zbus, sd-bus and GDBus do): naming it
  // keeps every layer on the bus a systemd user session provides.
  process.env.DBUS_SESSION_BUS_ADDRESS = fallback;
  return fallback;
}

// ---------------------------------------------------------------------------------------------------------------
// The wire format (D-Bus specification, "Message Protocol": https://dbus.freedesktop.org/doc/dbus-specification.html).
// Only the types a Secret Service read meets: y b u i s o g v, arrays, structs and dict entries. This side always
// writes little-endian; it reads either byte order, as the bus forwards each message in its sender's.

/** A variant: a value with its own signature. */
export interface Variant {
  readonly signature: string;
  readonly value: DBusValue;
}

/**
 * A D-Bus value as JavaScript holds it: y u i as numbers, b as a boolean, s o g as strings, v as a Variant, `ay` as
 * bytes, a struct as an array of its fields, any other array as an array, and a dict as an array of [key, value]
 * pairs (kept in wire order; D-Bus allows duplicate keys).
 */
export type DBusValue = number | boolean | string | Uint8Array | Variant | readonly DBusValue[];

interface TypeNode {
  readonly code: string;
  /** Array: [element]; struct: fields; dict entry: [key, value]. */
  readonly children: readonly TypeNode[];
}

const BASIC_CODES = "ybuisog";
const MAX_SIGNATURE_LENGTH = 255;
const MAX_ARRAY_BYTES = 64 * 1024 * 1024;
const MAX_MESSAGE_BYTES = 128 * 1024 * 1024;
const MAX_DEPTH = 32;

function signatureError(signature: string, why: string): Error {
  return new Error(`invalid D-Bus signature "${signature}": ${why}`);
}

/** Parses a signature into its complete types. Throws on a malformed signature or an unsupported type. */
function parseSignature(signature: string): TypeNode[] {
  if (signature.length > MAX_SIGNATURE_LENGTH) throw signatureError(signature, "longer than 255");
  let pos = 0;
  const one = (depth: number): TypeNode => {
    if (depth > MAX_DEPTH) throw signatureError(signature, "nested too deeply");
    const code = signature[pos];
    if (code === undefined) throw signatureError(signature, "ends inside a type");
    pos += 1;
    if (BASIC_CODES.includes(code) || code === "v") return { code, children: [] };
    if (code === "a") {
      if (signature[pos] === "{") {
        pos += 1;
        const key = one(depth + 1);
        if (!BASIC_CODES.includes(key.code)) throw signatureError(signature, "dict key is not a basic type");
        const value = one(depth + 1);
        if (signature[pos] !== "}") throw signatureError(signature, "dict entry not closed");
        pos += 1;
        return { code: "a", children: [{ code: "{", children: [key, value] }] };
      }
      return { code: "a", children: [one(depth + 1)] };
    }
    if (code === "(") {
      const fields: TypeNode[] = [];
      while (signature[pos] !== ")") {
        if (pos >= signature.length) throw signatureError(signature, "struct not closed");
        fields.push(one(depth + 1));
      }
      pos += 1;
      if (fields.length === 0) throw signatureError(signature, "empty struct");
      return { code: "(", children: fields };
    }
    throw signatureError(signature, `unsupported type code "${code}"`);
  };
  const types: TypeNode[] = [];
  while (pos < signature.length) types.push(one(0));
  return types;
}

function alignmentOf(code: string): number {
  switch (code) {
    case "y":
    case "g":
    case "v":
      return 1;
    case "(":
    case "{":
      return 8;
    default:
      return 4; // b u i s o a
  }
}

const OBJECT_PATH = /^\/(?:[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+)*)?$/;
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

function typeError(code: string, value: unknown): Error {
  return new TypeError(`cannot marshal ${typeof value} as D-Bus type "${code}"`);
}

function isVariant(value: unknown): value is Variant {
  return typeof value === "object" && value !== null && !Array.isArray(value) && "signature" in value;
}

/** Little-endian marshalling into a growing buffer; positions (and so alignment) count from the message start. */
class Writer {
  private bytes = new Uint8Array(256);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  constructor(private readonly origin = 0) {}

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  align(boundary: number): void {
    const pad = (boundary - ((this.origin + this.length) % boundary)) % boundary;
    this.reserve(pad);
    this.bytes.fill(0, this.length, this.length + pad);
    this.length += pad;
  }

  byte(value: number): void {
    this.reserve(1);
    this.bytes[this.length] = value;
    this.length += 1;
  }

  uint32(value: number): void {
    this.align(4);
    this.reserve(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
  }

  int32(value: number): void {
    this.align(4);
    this.reserve(4);
    this.view.setInt32(this.length, value, true);
    this.length += 4;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Overwrites a uint32 written earlier (an array's length, known once its elements are out). */
  patchUint32(at: number, value: number): void {
    this.view.setUint32(at, value, true);
  }

  result(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

function writeValue(w: Writer, type: TypeNode, value: DBusValue): void {
  switch (type.code) {
    case "y":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xff)
        throw typeError("y", value);
      w.byte(value);
      return;
    case "b":
      if (typeof value !== "boolean") throw typeError("b", value);
      w.uint32(value ? 1 : 0);
      return;
    case "u":
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff)
        throw typeError("u", value);
      w.uint32(value);
      return;
    case "i":
      if (typeof value !== "number" || !Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff)
        throw typeError("i", value);
      w.int32(value);
      return;
    case "s":
    case "o":
    case "g": {
      if (typeof value !== "string" || value.includes("\0")) throw typeError(type.code, value);
      if (type.code === "o" && !OBJECT_PATH.test(value))
        throw new TypeError(`invalid object path "${value}"`);
      if (type.code === "g") parseSignature(value);
      const encoded = utf8.encode(value);
      if (type.code === "g") {
        w.byte(encoded.length);
      } else {
        w.uint32(encoded.length);
      }
      w.raw(encoded);
      w.byte(0);
      return;
    }
    case "v": {
      if (!isVariant(value)) throw typeError("v", value);
      const inner = parseSignature(value.signature);
      if (inner.length !== 1)
        throw new TypeError(`a variant holds one complete type, not "${value.signature}"`);
      writeValue(w, { code: "g", children: [] }, value.signature);
      writeValue(w, inner[0]!, value.value);
      return;
    }
    case "a": {
      const element = type.children[0]!;
      if (element.code === "y" && value instanceof Uint8Array) {
        w.uint32(value.length);
        w.raw(value);
        return;
      }
      if (!Array.isArray(value)) throw typeError("a", value);
      w.uint32(0);
      const lengthAt = w.length - 4;
      // The padding before the first element is not part of the array's length, even for an empty array.
      w.align(alignmentOf(element.code));
      const start = w.length;
      for (const item of value as readonly DBusValue[]) writeValue(w, element, item);
      const size = w.length - start;
      if (size > MAX_ARRAY_BYTES) throw new RangeError("D-Bus array longer than 64 MiB");
      w.patchUint32(lengthAt, size);
      return;
    }
    case "(":
    case "{": {
      if (!Array.isArray(value) || value.length !== type.children.length) throw typeError(type.code, value);
      w.align(8);
      type.children.forEach((field, i) => writeValue(w, field, (value as readonly DBusValue[])[i]!));
      return;
    }
    default:
      throw signatureError(type.code, "unsupported type");
  }
}

/**
 * Marshals `values` by `signature`, little-endian, as they would sit at byte `origin` of a message (alignment is
 * relative to the message start; a body starts at a multiple of 8, so the default 0 suits a body).
 */
export function marshal(signature: string, values: readonly DBusValue[], origin = 0): Uint8Array {
  const types = parseSignature(signature);
  if (types.length !== values.length) {
    throw new TypeError(`signature "${signature}" has ${types.length} types, ${values.length} values given`);
  }
  const w = new Writer(origin);
  types.forEach((type, i) => writeValue(w, type, values[i]!));
  return w.result();
}

/** Unmarshalling from a message buffer; positions are absolute in it, which keeps alignment right. */
class Reader {
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
    private readonly littleEndian: boolean,
    private readonly end: number,
    private readonly origin = 0,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(count: number): void {
    if (this.pos + count > this.end) throw new Error("D-Bus message truncated");
  }

  align(boundary: number): void {
    const pad = (boundary - ((this.pos - this.origin) % boundary)) % boundary;
    this.need(pad);
    for (let i = 0; i < pad; i += 1) {
      if (this.bytes[this.pos + i] !== 0) throw new Error("D-Bus padding is not zero");
    }
    this.pos += pad;
  }

  byte(): number {
    this.need(1);
    const value = this.bytes[this.pos]!;
    this.pos += 1;
    return value;
  }

  uint32(): number {
    this.align(4);
    this.need(4);
    const value = this.view.getUint32(this.pos, this.littleEndian);
    this.pos += 4;
    return value;
  }

  int32(): number {
    this.align(4);
    this.need(4);
    const value = this.view.getInt32(this.pos, this.littleEndian);
    this.pos += 4;
    return value;
  }

  take(count: number): Uint8Array {
    this.need(count);
    const slice = this.bytes.subarray(this.pos, this.pos + count);
    this.pos += count;
    return slice;
  }

  text(count: number): string {
    const value = strictUtf8.decode(this.take(count));
    if (this.byte() !== 0) throw new Error("D-Bus string not NUL-terminated");
    if (value.includes("\0")) throw new Error("D-Bus string contains NUL");
    return value;
  }
}

function readValue(r: Reader, type: TypeNode, depth: number): DBusValue {
  if (depth > MAX_DEPTH) throw new Error("D-Bus value nested too deeply");
  switch (type.code) {
    case "y":
      return r.byte();
    case "b": {
      const value = r.uint32();
      if (value > 1) throw new Error("D-Bus boolean is neither 0 nor 1");
      return value === 1;
    }
    case "u":
      return r.uint32();
    case "i":
      return r.int32();
    case "s":
    case "o": {
      const value = r.text(r.uint32());
      if (type.code === "o" && !OBJECT_PATH.test(value)) throw new Error("invalid D-Bus object path");
      return value;
    }
    case "g": {
      const value = r.text(r.byte());
      parseSignature(value);
      return value;
    }
    case "v": {
      const signature = r.text(r.byte());
      const inner = parseSignature(signature);
      if (inner.length !== 1) throw new Error("D-Bus variant does not hold one complete type");
      return { signature, value: readValue(r, inner[0]!, depth + 1) };
    }
    case "a": {
      const size = r.uint32();
      if (size > MAX_ARRAY_BYTES) throw new Error("D-Bus array longer than 64 MiB");
      const element = type.children[0]!;
      r.align(alignmentOf(element.code));
      if (element.code === "y") return r.take(size).slice();
      const end = r.pos + size;
      const items: DBusValue[] = [];
      while (r.pos < end) items.push(readValue(r, element, depth + 1));
      if (r.pos !== end) throw new Error("D-Bus array elements overrun its length");
      return items;
    }
    case "(":
    case "{":
      r.align(8);
      return type.children.map((field) => readValue(r, field, depth + 1));
    default:
      throw signatureError(type.code, "unsupported type");
  }
}

/**
 * Unmarshals values of `signature` from `bytes` starting at `offset`, where `origin` is the position of the
 * message start in `bytes` (alignment is relative to it). Throws on truncated, misaligned or malformed data.
 */
export function unmarshal(
  signature: string,
  bytes: Uint8Array,
  options: { offset?: number; end?: number; littleEndian?: boolean; origin?: number } = {},
): DBusValue[] {
  const r = new Reader(
    bytes,
    options.offset ?? 0,
    options.littleEndian ?? true,
    options.end ?? bytes.length,
    options.origin ?? 0,
  );
  const values = parseSignature(signature).map((type) => readValue(r, type, 0));
  if (r.pos !== (options.end ?? bytes.length)) throw new Error("trailing bytes after the D-Bus values");
  return values;
}

/** D-Bus message types. */
export const MessageType = { METHOD_CALL: 1, METHOD_RETURN: 2, ERROR: 3, SIGNAL: 4 } as const;

/** One D-Bus message: the header fields this client uses, and the body. */
export interface DBusMessage {
  type: number;
  flags?: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  /** The body's signature ("" for no body). */
  signature: string;
  body: readonly DBusValue[];
}

// Header field codes, and the type each field's variant must hold.
const FIELDS = [
  [1, "path", "o"],
  [2, "interface", "s"],
  [3, "member", "s"],
  [4, "errorName", "s"],
  [5, "replySerial", "u"],
  [6, "destination", "s"],
  [7, "sender", "s"],
  [8, "signature", "g"],
] as const;

/** Encodes a message, little-endian, protocol version 1. */
export function encodeMessage(message: DBusMessage): Uint8Array {
  const body = marshal(message.signature, message.body);
  const fields: DBusValue[] = [];
  for (const [code, key, signature] of FIELDS) {
    const value = message[key];
    if (value === undefined || (key === "signature" && value === "")) continue;
    fields.push([code, { signature, value }]);
  }
  const header = marshal("yyyyuua(yv)", [
    0x6c, // 'l'
    message.type,
    message.flags ?? 0,
    1,
    body.length,
    message.serial,
    fields,
  ]);
  const headerLength = Math.ceil(header.length / 8) * 8;
  const out = new Uint8Array(headerLength + body.length);
  out.set(header);
  out.set(body, headerLength);
  return out;
}

/**
 * The size in bytes of the message at the start of `bytes`, from its fixed 16-byte prefix; null when fewer than 16
 * bytes are there. Throws on a prefix no valid message has.
 */
export function messageSize(bytes: Uint8Array): number | null {
  if (bytes.length < 16) return null;
  const endian = bytes[0];
  if (endian !== 0x6c && endian !== 0x42) throw new Error("D-Bus message with an unknown byte order");
  if (bytes[3] !== 1) throw new Error("D-Bus message of an unknown protocol version");
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const littleEndian = endian === 0x6c;
  const bodyLength = view.getUint32(4, littleEndian);
  const fieldsLength = view.getUint32(12, littleEndian);
  if (fieldsLength > MAX_ARRAY_BYTES) throw new Error("D-Bus header fields longer than 64 MiB");
  const size = Math.ceil((16 + fieldsLength) / 8) * 8 + bodyLength;
  if (size > MAX_MESSAGE_BYTES) throw new Error("D-Bus message longer than 128 MiB");
  return size;
}

/** Decodes the one whole message in `bytes` (see messageSize). Throws on a malformed message. */
export function decodeMessage(bytes: Uint8Array): DBusMessage {
  const size = messageSize(bytes);
  if (size === null || size !== bytes.length) throw new Error("D-Bus message truncated");
  const littleEndian = bytes[0] === 0x6c;
  const fieldsEnd = 16 + new DataView(bytes.buffer, bytes.byteOffset, 16).getUint32(12, littleEndian);
  const [, type, flags, , bodyLength, serial, fields] = unmarshal("yyyyuua(yv)", bytes, {
    end: fieldsEnd,
    littleEndian,
  }) as [number, number, number, number, number, number, [number, Variant][]];
  const message: DBusMessage = { type, flags, serial, signature: "", body: [] };
  for (const [code, variant] of fields) {
    const known = FIELDS.find(([c]) => c === code);
    if (known === undefined) continue; // unknown fields must be ignored
    if (variant.signature !== known[2]) throw new Error(`D-Bus header field ${code} has the wrong type`);
    (message as unknown as Record<string, unknown>)[known[1]] = variant.value;
  }
  const bodyStart = Math.ceil(fieldsEnd / 8) * 8;
  for (let i = fieldsEnd; i < bodyStart; i += 1) {
    if (bytes[i] !== 0) throw new Error("D-Bus padding is not zero");
  }
  if (bodyStart + bodyLength !== bytes.length) throw new Error("D-Bus message body length mismatch");
  message.body = unmarshal(message.signature, bytes, { offset: bodyStart, littleEndian });
  return message;
}

// ---------------------------------------------------------------------------------------------------------------
// The read.

/**
 * What a read found. `defer` means the case is one the native path handles differently (locked items, several
 * matches, an error other than "no provider", an unusual reply): the caller asks @napi-rs/keyring, which gives
 * today's exact behaviour and errors. `reason` is for debugging and never holds a secret.
 */
export type SecretServiceRead =
  { status: "found"; value: string } | { status: "missing" } | { status: "defer"; reason: string };

/** What to read, where, and within how long. */
export interface SecretServiceReadRequest {
  /** The bus socket (see unixSocketOf). */
  socketPath: string;
  /** The item's lookup attributes (keyring-rs: service and username). */
  attributes: Readonly<Record<string, string>>;
  /** The time limit for the whole read, in milliseconds. */
  timeoutMs: number;
  /** Non-secret context for errors (operation, account). */
  details?: Record<string, unknown>;
}

const BUS = {
  destination: "org.freedesktop.DBus",
  path: "/org/freedesktop/DBus",
  interface: "org.freedesktop.DBus",
};
const SECRETS = "org.freedesktop.secrets";
const SERVICE_PATH = "/org/freedesktop/secrets";
// The bus's answers when nothing owns (or can be started for) the Secret Service name.
const NO_PROVIDER = new Set([
  "org.freedesktop.DBus.Error.ServiceUnknown",
  "org.freedesktop.DBus.Error.NameHasNoOwner",
]);

function call(
  serial: number,
  fields: { destination: string; path: string; interface: string; member: string },
  signature = "",
  body: readonly DBusValue[] = [],
): Uint8Array {
  return encodeMessage({ type: MessageType.METHOD_CALL, serial, ...fields, signature, body });
}

/** The first string of an error reply's body: the error's message, when it has one. */
function errorText(message: DBusMessage): string {
  const [first] = message.body;
  return typeof first === "string" ? `${message.errorName}: ${first}` : String(message.errorName);
}

/**
 * Reads the one item matching `attributes` from the Secret Service on the bus at `socketPath`, over a connection of
 * its own that is always closed at the end.
 *
 * Throws LK_KEYRING_UNREACHABLE when the bus cannot be reached or closes, or nothing provides
 * org.freedesktop.secrets; LK_KEYRING_TIMEOUT when the whole read does not finish within `timeoutMs`.
 *
 * The secret travels over a "plain" session: unencrypted on the bus. That is deliberate. The session bus is a
 * per-user private socket, so any process able to eavesdrop on it runs as the same user and could call GetSecrets
 * itself; the "dh-ietf1024-sha256-aes128-cbc-pkcs7" algorithm would protect against no one here, and would cost
 * node:crypto's load (~5 ms) on every read.
 */
export async function readSecretService(request: SecretServiceReadRequest): Promise<SecretServiceRead> {
  const { socketPath, attributes, timeoutMs } = request;
  const details = request.details ?? {};
  // Serials of our calls. Hello, OpenSession and SearchItems go out in one write, together with the
  // authentication: the bus reads the SASL lines up to BEGIN and treats the rest as messages (sd-bus pipelines
  // its handshake the same way), and only GetSecret needs an earlier answer (the session and the item).
  const HELLO = 1;
  const OPEN_SESSION = 2;
  const SEARCH = 3;
  const GET_SECRET = 4;
  const uid = process.getuid?.();
  const auth =
    uid === undefined ? "AUTH EXTERNAL\r\n" : `AUTH EXTERNAL ${Buffer.from(String(uid)).toString("hex")}\r\n`;
  let opening: Buffer;
  try {
    opening = Buffer.concat([
      Buffer.from(`\0${auth}BEGIN\r\n`, "latin1"),
      call(HELLO, { ...BUS, member: "Hello" }),
      call(
        OPEN_SESSION,
        {
          destination: SECRETS,
          path: SERVICE_PATH,
          interface: "org.freedesktop.Secret.Service",
          member: "OpenSession",
        },
        "sv",
        ["plain", { signature: "s", value: "" }],
      ),
      call(
        SEARCH,
        {
          destination: SECRETS,
          path: SERVICE_PATH,
          interface: "org.freedesktop.Secret.Service",
          member: "SearchItems",
        },
        "a{ss}",
        [Object.entries(attributes)],
      ),
    ]);
  } catch {
    // An attribute D-Bus cannot carry (a NUL in an account name): the native module decides what that means.
    return { status: "defer", reason: "attributes D-Bus strings cannot hold" };
  }

  // node:net is loaded only here: commands that never reach the keychain should not pay for it.
  const { connect } = await import("node:net");
  return new Promise<SecretServiceRead>((resolve, reject) => {
    const replies = new Map<number, DBusMessage>();
    let socket: ReturnType<typeof connect>;
    try {
      socket = connect(socketPath);
    } catch (error) {
      reject(
        new LatchkeyError("LK_KEYRING_UNREACHABLE", {
          message: "The D-Bus session bus is not reachable.",
          details,
          cause: new Error(error instanceof Error ? error.message : String(error)),
        }),
      );
      return;
    }
    let settled = false;
    const finish = (outcome: SecretServiceRead | LatchkeyError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof LatchkeyError) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => {
      finish(
        new LatchkeyError("LK_KEYRING_TIMEOUT", {
          message: `The OS keychain did not answer within ${timeoutMs} ms.`,
          details: { ...details, timeoutMs },
        }),
      );
    }, timeoutMs);
    const unreachable = (message: string | undefined, cause?: string): LatchkeyError =>
      new LatchkeyError("LK_KEYRING_UNREACHABLE", {
        ...(message === undefined ? {} : { message }),
        details,
        ...(cause === undefined ? {} : { cause: new Error(cause) }),
      });

    /** Decides what to do once a reply we wait for has come; throws on a reply of an unexpected shape. */
    const advance = (): void => {
      for (const serial of [HELLO, OPEN_SESSION, SEARCH, GET_SECRET]) {
        const reply = replies.get(serial);
        if (reply?.type !== MessageType.ERROR) continue;
        if (serial !== HELLO && NO_PROVIDER.has(reply.errorName ?? "")) {
          // The catalogue's own message, as the native path reports this case.
          finish(unreachable(undefined, errorText(reply)));
        } else {
          // Denied by policy, locked, no such object…: the native path reports each of these its own way.
          finish({ status: "defer", reason: `${reply.errorName} in reply to call ${serial}` });
        }
        return;
      }
      const opened = replies.get(OPEN_SESSION);
      const found = replies.get(SEARCH);
      if (opened === undefined || found === undefined) return;
      const got = replies.get(GET_SECRET);
      if (got === undefined) {
        if (opened.signature !== "vo" || found.signature !== "aoao") {
          finish({ status: "defer", reason: "unexpected reply signature" });
          return;
        }
        const [unlocked, locked] = found.body as [string[], string[]];
        if (unlocked.length === 0 && locked.length === 0) {
          finish({ status: "missing" });
          return;
        }
        if (unlocked.length !== 1 || locked.length !== 0) {
          finish({
            status: "defer",
            reason: `${unlocked.length} unlocked and ${locked.length} locked matches`,
          });
          return;
        }
        const session = opened.body[1] as string;
        socket.write(
          call(
            GET_SECRET,
            {
              destination: SECRETS,
              path: unlocked[0]!,
              interface: "org.freedesktop.Secret.Item",
              member: "GetSecret",
            },
            "o",
            [session],
          ),
        );
        return;
      }
      if (got.signature !== "(oayays)") {
        finish({ status: "defer", reason: "unexpected reply signature" });
        return;
      }
      const [[, parameters, value]] = got.body as [[string, Uint8Array, Uint8Array, string]];
      if (parameters.length !== 0) {
        finish({ status: "defer", reason: "a plain session secret with parameters" });
        return;
      }
      let text: string;
      try {
        // keyring-rs stores a password as its UTF-8 bytes; other bytes are the native path's to report.
        text = strictUtf8.decode(value);
      } catch {
        finish({ status: "defer", reason: "a secret that is not UTF-8" });
        return;
      }
      finish({ status: "found", value: text });
    };

    let authenticated = false;
    let pending: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      if (!authenticated) {
        const eol = pending.indexOf("\r\n");
        if (eol < 0) {
          if (pending.length > 512) finish({ status: "defer", reason: "an authentication line too long" });
          return;
        }
        const line = pending.subarray(0, eol).toString("latin1");
        if (!line.startsWith("OK ")) {
          // REJECTED (e.g. a platform where EXTERNAL needs credentials node:net cannot pass) or an error.
          finish({ status: "defer", reason: `authentication answered "${line.split(" ")[0]}"` });
          return;
        }
        authenticated = true;
        pending = pending.subarray(eol + 2);
      }
      for (;;) {
        const size = messageSize(pending);
        if (size === null || pending.length < size) return;
        const bytes = pending.subarray(0, size);
        pending = pending.subarray(size);
        // Signals (NameAcquired) and anything else not answering us are skipped without decoding their bodies.
        const replySerial = replySerialOf(bytes);
        if (replySerial === null || replySerial < HELLO || replySerial > GET_SECRET) continue;
        replies.set(replySerial, decodeMessage(bytes));
        advance();
        if (settled) return;
      }
    };

    socket.once("connect", () => socket.write(opening));
    socket.on("data", (chunk: Buffer) => {
      try {
        onData(chunk);
      } catch {
        finish({ status: "defer", reason: "a malformed D-Bus message" });
      }
    });
    socket.once("error", (error) => {
      finish(unreachable("The D-Bus session bus is not reachable.", error.message));
    });
    socket.once("close", () => {
      finish(unreachable("The D-Bus session bus closed the connection."));
    });
  });
}

/**
 * The REPLY_SERIAL of a method return or error, read from its header fields without decoding the body; null for
 * other message types.
 */
function replySerialOf(bytes: Uint8Array): number | null {
  if (bytes[1] !== MessageType.METHOD_RETURN && bytes[1] !== MessageType.ERROR) return null;
  const littleEndian = bytes[0] === 0x6c;
  const fieldsEnd = 16 + new DataView(bytes.buffer, bytes.byteOffset, 16).getUint32(12, littleEndian);
  const [fields] = unmarshal("a(yv)", bytes, { offset: 12, end: fieldsEnd, littleEndian }) as [
    [number, Variant][],
  ];
  for (const [code, variant] of fields) {
    if (code === 5 && variant.signature === "u") return variant.value as number;
  }
  return null;
}
