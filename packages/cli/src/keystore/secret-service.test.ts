// The D-Bus wire format of secret-service.ts, byte by byte, and the read's failure handling against sockets that
// misbehave. The read against a real gnome-keyring is in secret-service-keyring.test.ts.
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  MessageType,
  decodeMessage,
  encodeMessage,
  marshal,
  messageSize,
  readSecretService,
  unixSocketOf,
  unmarshal,
  type DBusMessage,
  type DBusValue,
} from "./secret-service.js";

/** Bytes from a hex string that may hold spaces, newlines and `|` separators (for annotated vectors). */
function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/[\s|]/g, ""), "hex"));
}

function ascii(text: string): string {
  return Buffer.from(text, "latin1").toString("hex");
}

describe("D-Bus marshalling", () => {
  it("encodes org.freedesktop.DBus.Hello exactly as the specification lays it out", () => {
    // Worked by hand from the specification's "Message Format" section: a fixed 12-byte prefix
    // (endianness 'l', type 1 = METHOD_CALL, flags 0, version 1, body length 0, serial 1), then the header fields
    // as a(yv) — each struct 8-aligned, each field code a byte, its variant's signature a 'g' (length byte, type
    // codes, NUL), the value aligned for its own type — then padding to 8, then the (empty) body.
    const expected = hex(`
      6c 01 00 01 | 00 00 00 00 | 01 00 00 00
      6d 00 00 00
      01 01 6f 00 | 15 00 00 00 | ${ascii("/org/freedesktop/DBus")} 00 | 00 00
      02 01 73 00 | 14 00 00 00 | ${ascii("org.freedesktop.DBus")} 00 | 00 00 00
      03 01 73 00 | 05 00 00 00 | ${ascii("Hello")} 00 | 00 00
      06 01 73 00 | 14 00 00 00 | ${ascii("org.freedesktop.DBus")} 00
      00 00 00
    `);
    // Offsets: fields start at 16; PATH ends at 46 (pad to 48), INTERFACE at 77 (pad to 80), MEMBER at 94
    // (pad to 96), DESTINATION at 125: the array is 125 - 16 = 109 = 0x6d bytes; the header pads to 128.
    expect(expected.length).toBe(128);
    const encoded = encodeMessage({
      type: MessageType.METHOD_CALL,
      serial: 1,
      path: "/org/freedesktop/DBus",
      interface: "org.freedesktop.DBus",
      member: "Hello",
      destination: "org.freedesktop.DBus",
      signature: "",
      body: [],
    });
    expect(Buffer.from(encoded).toString("hex")).toBe(Buffer.from(expected).toString("hex"));
    expect(messageSize(encoded)).toBe(128);
  });

  it("encodes basic types little-endian, with strings length-prefixed and NUL-terminated", () => {
    expect(marshal("yu", [1, 0x12345678])).toEqual(hex("01 000000 78563412"));
    expect(marshal("i", [-2])).toEqual(hex("feffffff"));
    expect(marshal("bb", [true, false])).toEqual(hex("01000000 00000000"));
    expect(marshal("s", ["foo"])).toEqual(hex(`03000000 ${ascii("foo")} 00`));
    expect(marshal("g", ["a{sv}"])).toEqual(hex(`05 ${ascii("a{sv}")} 00`));
    expect(marshal("v", [{ signature: "u", value: 7 }])).toEqual(hex("01 75 00 | 00 | 07000000"));
    // UTF-8: the length counts bytes, not characters.
    expect(marshal("s", ["é"])).toEqual(hex("02000000 c3a9 00"));
  });

  it("aligns structs and dict entries to 8 after odd offsets, and array lengths exclude the first padding", () => {
    // y, then a struct: 7 bytes of padding before the struct, 3 more before its u.
    expect(marshal("y(yu)", [7, [8, 9]])).toEqual(hex("07 00000000000000 | 08 000000 | 09000000"));
    // y, array length at 4, the dict entry at 8 (no padding needed there), its u at 16 after "a" and padding.
    expect(marshal("ya{su}", [1, [["a", 2]]])).toEqual(
      hex(`01 000000 | 0c000000 | 01000000 61 00 0000 | 02000000`),
    );
    // An empty array still carries the padding to its element's alignment, outside its length.
    expect(marshal("a(u)", [[]])).toEqual(hex("00000000 | 00000000"));
    expect(marshal("ya(u)", [1, []])).toEqual(hex("01 000000 | 00000000"));
    // Positions count from the message start: at byte 3, a u needs one byte of padding.
    expect(marshal("u", [1], 3)).toEqual(hex("00 | 01000000"));
  });

  it("marshals arrays of structs, each element aligned", () => {
    const bytes = marshal("a(yu)", [
      [
        [1, 2],
        [3, 4],
      ],
    ]);
    // length 16 = (1 + 3 padding + 4) + (1 + 3 + 4); the first element starts at 8.
    expect(bytes).toEqual(hex("10000000 00000000 | 01 000000 02000000 | 03 000000 04000000"));
    expect(unmarshal("a(yu)", bytes)).toEqual([
      [
        [1, 2],
        [3, 4],
      ],
    ]);
  });

  const roundTrips: [string, DBusValue[]][] = [
    [
      "ybuisog",
      [255, true, 0xffffffff, -0x80000000, "ünï 🔑", "/org/freedesktop/secrets/session/s1", "a{sv}"],
    ],
    [
      "a{ss}",
      [
        [
          ["service", "latchkey"],
          ["username", "registry://npm.example/"],
        ],
      ],
    ],
    ["aoao", [["/org/freedesktop/secrets/collection/login/1"], []]],
    ["vo", [{ signature: "s", value: "" }, "/org/freedesktop/secrets/session/s3"]],
    ["(oayays)", [["/s", new Uint8Array(), Uint8Array.from([0, 1, 255]), "text/plain"]]],
    ["a{o(oayays)}", [[["/a", ["/s", new Uint8Array([1]), new Uint8Array([2, 3]), "t"]]]]],
    [
      "a(yv)",
      [
        [
          [1, { signature: "o", value: "/" }],
          [8, { signature: "g", value: "" }],
        ],
      ],
    ],
    [
      "v",
      [
        {
          signature: "av",
          value: [
            { signature: "(ys)", value: [1, "x"] },
            { signature: "b", value: false },
          ],
        },
      ],
    ],
    ["yaay", [9, [new Uint8Array([1, 2]), new Uint8Array(), new Uint8Array([3])]]],
    ["aa{sv}", [[[], [["k", { signature: "ai", value: [-1, 0, 1] }]]]]],
  ];
  for (const [signature, values] of roundTrips) {
    it(`round-trips ${signature}`, () => {
      for (const origin of [0, 8]) {
        const bytes = marshal(signature, values, origin);
        const padded = new Uint8Array(origin + bytes.length);
        padded.set(bytes, origin);
        expect(unmarshal(signature, padded, { offset: origin })).toEqual(values);
      }
    });
  }

  it("round-trips a 64 KiB byte array", () => {
    const value = Uint8Array.from({ length: 65536 }, (_, i) => i % 251);
    const [back] = unmarshal("ay", marshal("ay", [value]));
    expect(back).toEqual(value);
  });

  it("reads big-endian data, as the bus forwards a big-endian sender's message", () => {
    expect(
      unmarshal("yu(s)", hex(`01 000000 12345678 | 00000003 ${ascii("foo")} 00`), { littleEndian: false }),
    ).toEqual([1, 0x12345678, ["foo"]]);
  });

  it("refuses values that do not fit their type, and malformed signatures", () => {
    expect(() => marshal("y", [256])).toThrow(TypeError);
    expect(() => marshal("u", [-1])).toThrow(TypeError);
    expect(() => marshal("s", ["a\0b"])).toThrow(TypeError);
    expect(() => marshal("o", ["not/a/path"])).toThrow(TypeError);
    expect(() => marshal("(us)", [[1]])).toThrow(TypeError);
    expect(() => marshal("u", [])).toThrow(TypeError);
    expect(() => marshal("a{vs}", [[]])).toThrow(/dict key/);
    expect(() => marshal("(", [[]])).toThrow(/signature/);
    expect(() => marshal("x", [1])).toThrow(/unsupported/);
  });

  it("refuses malformed data: truncation, non-zero padding, bad booleans, invalid UTF-8, overrunning arrays", () => {
    expect(() => unmarshal("u", hex("010000"))).toThrow(/truncated/);
    expect(() => unmarshal("yu", hex("01 000100 01000000"))).toThrow(/padding/);
    expect(() => unmarshal("b", hex("02000000"))).toThrow(/boolean/);
    expect(() => unmarshal("s", hex("01000000 ff 00"))).toThrow();
    expect(() => unmarshal("s", hex("01000000 61 01"))).toThrow(/NUL/);
    expect(() => unmarshal("au", hex("06000000 01000000 0200"))).toThrow();
    expect(() => unmarshal("u", hex("01000000 00"))).toThrow(/trailing/);
  });
});

describe("D-Bus messages", () => {
  it("decodes an error reply: its name, the serial it answers, and its message", () => {
    const message: DBusMessage = {
      type: MessageType.ERROR,
      serial: 7,
      replySerial: 2,
      errorName: "org.freedesktop.DBus.Error.ServiceUnknown",
      destination: ":1.5",
      sender: "org.freedesktop.DBus",
      signature: "s",
      body: ["The name org.freedesktop.secrets was not provided by any .service files"],
    };
    const bytes = encodeMessage(message);
    expect(messageSize(bytes)).toBe(bytes.length);
    expect(decodeMessage(bytes)).toEqual({ ...message, flags: 0 });
  });

  it("decodes a method return with a body, and tells the size of a message from its first 16 bytes", () => {
    const message: DBusMessage = {
      type: MessageType.METHOD_RETURN,
      serial: 19,
      replySerial: 4,
      signature: "(oayays)",
      body: [
        ["/org/freedesktop/secrets/session/s3", new Uint8Array(), new Uint8Array([104, 105]), "text/plain"],
      ],
    };
    const bytes = encodeMessage(message);
    expect(messageSize(bytes.subarray(0, 15))).toBeNull();
    expect(messageSize(bytes.subarray(0, 16))).toBe(bytes.length);
    expect(decodeMessage(bytes)).toEqual({ ...message, flags: 0 });
    expect(() => decodeMessage(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated/);
  });

  it("refuses a header of the wrong byte order or protocol version", () => {
    const bytes = encodeMessage({ type: MessageType.SIGNAL, serial: 1, signature: "", body: [] });
    expect(() => messageSize(Uint8Array.from([0x58, ...bytes.subarray(1)]))).toThrow(/byte order/);
    expect(() => messageSize(Uint8Array.from([...bytes.subarray(0, 3), 2, ...bytes.subarray(4)]))).toThrow(
      /version/,
    );
  });
});

describe("D-Bus addresses", () => {
  it("takes unix:path= and unix:abstract= (unescaped), and nothing else", () => {
    expect(unixSocketOf("unix:path=/run/user/1000/bus")).toBe("/run/user/1000/bus");
    expect(unixSocketOf("unix:path=/tmp/a%20b,guid=0123")).toBe("/tmp/a b");
    expect(unixSocketOf("unix:abstract=/tmp/dbus-x,guid=1")).toBe("\0/tmp/dbus-x");
    expect(unixSocketOf("tcp:host=localhost,port=1")).toBeNull();
    expect(unixSocketOf("unix:path=/a;unix:path=/b")).toBeNull();
    expect(unixSocketOf("unix:path=%zz")).toBeNull();
  });
});

describe("reading over a bus that misbehaves", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "lk-ss-unit-"));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A unix-socket server answering each connection with `onConnection`; closed by the returned function. */
  async function serve(
    name: string,
    onConnection: (socket: Socket) => void,
  ): Promise<[string, () => Promise<void>]> {
    const path = join(dir, name);
    const server: Server = createServer(onConnection);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return [
      path,
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        }),
    ];
  }

  const request = (socketPath: string, timeoutMs = 2000) => ({
    socketPath,
    attributes: { service: "latchkey", username: "a" },
    timeoutMs,
    details: { operation: "get", account: "a" },
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("times out at its limit, not before, on a socket that accepts and never answers, and closes its connection", async () => {
    let connected!: () => void;
    const hasConnected = new Promise<void>((resolve) => (connected = resolve));
    let closed!: () => void;
    const hasClosed = new Promise<void>((resolve) => (closed = resolve));
    const [path, close] = await serve("silent", (socket) => {
      // Read (and drop) what the client sends, or its hang-up would never be seen.
      socket.resume();
      socket.on("close", () => closed());
      socket.on("error", () => {});
      connected();
    });
    // Only the read's own timer is faked: the sockets stay real.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      let outcome: unknown = "pending";
      void readSecretService(request(path, 200)).then(
        (read) => (outcome = read),
        (error: unknown) => (outcome = error),
      );
      await hasConnected;
      await vi.advanceTimersByTimeAsync(199);
      expect(outcome).toBe("pending");
      await vi.advanceTimersByTimeAsync(1);
      expect(outcome).toMatchObject({
        code: "LK_KEYRING_TIMEOUT",
        message: "The OS keychain did not answer within 200 ms.",
        details: { operation: "get", account: "a", timeoutMs: 200 },
      });
      await hasClosed;
    } finally {
      // A read still waiting would keep its connection, and so the server, open.
      await vi.runAllTimersAsync();
      await close();
    }
  });

  it("is unreachable when the socket is missing or the bus hangs up", async () => {
    await expect(readSecretService(request(join(dir, "missing")))).rejects.toMatchObject({
      code: "LK_KEYRING_UNREACHABLE",
      cause: { message: expect.stringMatching(/ENOENT/) as unknown },
    });
    const [path, close] = await serve("hangup", (socket) => socket.destroy());
    try {
      await expect(readSecretService(request(path))).rejects.toMatchObject({
        code: "LK_KEYRING_UNREACHABLE",
      });
    } finally {
      await close();
    }
  });

  it("defers an account D-Bus cannot carry to the native path, without connecting", async () => {
    const read = readSecretService({ ...request(join(dir, "missing")), attributes: { username: "a\0b" } });
    expect(await read).toEqual({ status: "defer", reason: "attributes D-Bus strings cannot hold" });
  });

  it("defers to the native path when authentication is rejected or the bus speaks nonsense", async () => {
    const [rejecting, closeRejecting] = await serve("rejecting", (socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.write("REJECTED EXTERNAL\r\n"));
    });
    const [garbled, closeGarbled] = await serve("garbled", (socket) => {
      socket.on("error", () => {});
      socket.once("data", () => socket.write("OK 0123456789abcdef0123456789abcdef\r\nXXXXXXXXXXXXXXXX"));
    });
    try {
      expect(await readSecretService(request(rejecting))).toMatchObject({ status: "defer" });
      expect(await readSecretService(request(garbled))).toEqual({
        status: "defer",
        reason: "a malformed D-Bus message",
      });
    } finally {
      await closeRejecting();
      await closeGarbled();
    }
  });
});
