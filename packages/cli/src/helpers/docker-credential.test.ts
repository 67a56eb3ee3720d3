import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import type { Keystore } from "../keystore/types.js";
import { createTestContext } from "../../test/support/context.js";
import {
  DOCKER_NOT_FOUND_MESSAGE,
  dockerAccount,
  parseServerURLInput,
  parseStoreInput,
  runDockerCredentialHelper,
} from "./docker-credential.js";

const SECRET = "docker-canary-secret-9f2c";
const bytes = (text: string) => new TextEncoder().encode(text);

function helperContext(keystore: Keystore, input = "") {
  return createTestContext({
    stdin: { isTTY: false, readAll: () => Promise.resolve(bytes(input)) },
    keystore: () => Promise.resolve({ keystore, backend: keystore.kind } as unknown as KeystoreResolution),
  });
}

async function run(keystore: Keystore, args: string[], input = "") {
  const ctx = helperContext(keystore, input);
  const code = await runDockerCredentialHelper(args, ctx);
  return { code, stdout: ctx.stdout.text(), stderr: ctx.stderr.text() };
}

describe("docker credential helper protocol", () => {
  it("stores, gets, lists and erases under docker:<serverURL>", async () => {
    const keystore = createMemoryKeystore();
    const creds = { ServerURL: "https://index.docker.io/v1/", Username: "alice", Secret: SECRET };
    expect((await run(keystore, ["store"], `${JSON.stringify(creds)}\n`)).code).toBe(0);
    expect(await keystore.list()).toEqual(["docker:https://index.docker.io/v1/"]);

    const get = await run(keystore, ["get"], "https://index.docker.io/v1/\n");
    expect(get).toEqual({ code: 0, stdout: `${JSON.stringify(creds)}\n`, stderr: "" });

    await run(keystore, ["store"], JSON.stringify({ ...creds, ServerURL: "ghcr.io", Username: "bob" }));
    const list = await run(keystore, ["list"], "unused");
    expect(JSON.parse(list.stdout)).toEqual({ "https://index.docker.io/v1/": "alice", "ghcr.io": "bob" });
    expect(list.stdout).not.toContain(SECRET);

    expect((await run(keystore, ["erase"], "ghcr.io")).code).toBe(0);
    expect(await keystore.list()).toEqual(["docker:https://index.docker.io/v1/"]);
  });

  it("answers a miss with docker's literal message on stdout, exit 1 and a quiet stderr", async () => {
    const result = await run(createMemoryKeystore(), ["get"], "registry.example.com");
    expect(result).toEqual({ code: 1, stdout: `${DOCKER_NOT_FOUND_MESSAGE}\n`, stderr: "" });
  });

  it("keys by the exact server URL docker sent, trimmed and nothing more", async () => {
    const keystore = createMemoryKeystore();
    await run(
      keystore,
      ["store"],
      JSON.stringify({ ServerURL: "https://Registry.Example.com:443/", Username: "u", Secret: SECRET }),
    );
    expect((await run(keystore, ["get"], "  https://Registry.Example.com:443/\r\n")).code).toBe(0);
    for (const variant of [
      "registry.example.com",
      "https://registry.example.com:443/",
      "https://Registry.Example.com:443",
    ]) {
      expect((await run(keystore, ["get"], variant)).code, variant).toBe(1);
    }
  });

  it("erasing what is not there succeeds (docker logout erases every spelling of a server)", async () => {
    expect(await run(createMemoryKeystore(), ["erase"], "http://127.0.0.1:5000")).toEqual({
      code: 0,
      stdout: "",
      stderr: "",
    });
  });

  it("uses docker's own messages for a missing server URL or username", async () => {
    const noUrl = await run(createMemoryKeystore(), ["get"], " \n");
    expect(noUrl.stdout).toBe("no credentials server URL\n");
    expect(noUrl.stderr).toContain("LK_HELPER_INPUT_INVALID");
    expect(noUrl.code).toBe(2);
    const noUser = await run(
      createMemoryKeystore(),
      ["store"],
      JSON.stringify({ ServerURL: "ghcr.io", Username: "", Secret: SECRET }),
    );
    expect(noUser.stdout).toBe("no credentials username\n");
    expect(noUser.stderr).not.toContain(SECRET);
  });

  it.each([
    ["not JSON", `ServerURL=ghcr.io Secret=${SECRET}`],
    ["an array", JSON.stringify(["ghcr.io", "u", SECRET])],
    ["a duplicated member", `{"ServerURL":"ghcr.io","Username":"u","Secret":"x","Secret":"${SECRET}"}`],
    [
      "an unknown member",
      JSON.stringify({ ServerURL: "ghcr.io", Username: "u", Secret: SECRET, Email: "e" }),
    ],
    ["a lower-case member", JSON.stringify({ serverurl: "ghcr.io", Username: "u", Secret: SECRET })],
    ["a non-string secret", `{"ServerURL":"ghcr.io","Username":"u","Secret":12345}`],
    ["an empty secret", JSON.stringify({ ServerURL: "ghcr.io", Username: "u", Secret: "" })],
    [
      "a NUL in the secret",
      JSON.stringify({ ServerURL: "ghcr.io", Username: "u", Secret: `${SECRET}\u0000` }),
    ],
    [
      "a newline in the user name",
      JSON.stringify({ ServerURL: "ghcr.io", Username: "u\nx", Secret: SECRET }),
    ],
    ["a CR in the server URL", JSON.stringify({ ServerURL: "ghcr.io\rx", Username: "u", Secret: SECRET })],
    ["a space in the server URL", JSON.stringify({ ServerURL: "ghcr .io", Username: "u", Secret: SECRET })],
    [
      "a trailing space in the server URL",
      JSON.stringify({ ServerURL: "ghcr.io ", Username: "u", Secret: SECRET }),
    ],
    [
      "user information in the server URL",
      JSON.stringify({ ServerURL: "https://u:p@ghcr.io", Username: "u", Secret: SECRET }),
    ],
    ["a file: server URL", JSON.stringify({ ServerURL: "file:///etc", Username: "u", Secret: SECRET })],
    [
      "a server URL without a host",
      JSON.stringify({ ServerURL: "https:///x", Username: "u", Secret: SECRET }),
    ],
  ])("refuses store input with %s, without echoing it", async (_name, input) => {
    const keystore = createMemoryKeystore();
    const result = await run(keystore, ["store"], input);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("LK_HELPER_INPUT_INVALID");
    expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(await keystore.list()).toEqual([]);
  });

  it.each([
    ["two lines", "ghcr.io\nevil.example"],
    ["a NUL", "ghcr.io\u0000"],
    ["invalid UTF-8", "\u00ff"],
  ])("refuses a get request with %s", (_name, input) => {
    const raw = input === "\u00ff" ? new Uint8Array([0x67, 0xff]) : bytes(input);
    expect(() => parseServerURLInput(raw)).toThrow(
      expect.objectContaining({ code: "LK_HELPER_INPUT_INVALID" }),
    );
  });

  it("a store then get round-trips any valid credentials exactly (property)", async () => {
    const printable = fc.string({ minLength: 1, maxLength: 40 }).filter((s) =>
      [...s].every((ch) => {
        const code = ch.codePointAt(0)!;
        return code > 0x1f && (code < 0x7f || code > 0x9f);
      }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.domain(),
        fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
        printable,
        fc.string({ minLength: 1, maxLength: 200 }).filter((s) => !s.includes("\u0000")),
        async (host, port, username, secret) => {
          const serverURL = port === undefined ? host : `${host}:${port}`;
          const keystore = createMemoryKeystore();
          const stored = await run(
            keystore,
            ["store"],
            JSON.stringify({ ServerURL: serverURL, Username: username, Secret: secret }),
          );
          expect(stored.code, stored.stderr).toBe(0);
          const got = await run(keystore, ["get"], serverURL);
          expect(JSON.parse(got.stdout)).toEqual({
            ServerURL: serverURL,
            Username: username,
            Secret: secret,
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("reports an entry it did not write as corrupt, naming the account only", async () => {
    const keystore = createMemoryKeystore({ [dockerAccount("ghcr.io")]: SECRET });
    const result = await run(keystore, ["get"], "ghcr.io");
    expect(result.stderr).toContain("LK_STORE_CORRUPT");
    expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(result.code).not.toBe(0);
  });

  it("parses docker's store input exactly", () => {
    expect(
      parseStoreInput(bytes('{"ServerURL":"127.0.0.1:5000","Username":"alice","Secret":"pw"}\n')),
    ).toEqual({ ServerURL: "127.0.0.1:5000", Username: "alice", Secret: "pw" });
  });

  it("rejects usage errors with exit 2 and prints help on --help", async () => {
    const none = await run(createMemoryKeystore(), []);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/^Usage: docker-credential-latchkey <store\|get\|erase\|list\|version>\n$/);
    const unknown = await run(createMemoryKeystore(), ["fetch"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("LK_USAGE");
    const help = await run(createMemoryKeystore(), ["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('"credsStore": "latchkey"');
  });
});
