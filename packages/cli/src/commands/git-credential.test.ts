import { describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { runCli } from "../cli.js";
import type { Context } from "../context.js";
import type { KeystoreResolution } from "../keystore/resolve.js";
import { createMemoryKeystore } from "../keystore/memory.js";
import type { Keystore } from "../keystore/types.js";
import { gitCredential } from "./git-credential.js";

function resolution(keystore: Keystore): KeystoreResolution {
  return {
    keystore,
    backend: "memory",
    reason: "forced",
    degraded: false,
    explanation: "test",
    promoted: 0,
    fileStore: { exists: false, protection: null },
  };
}

function helperContext(input: string, keystore: Keystore, prefetched: string[] = []) {
  return createTestContext({
    stdin: { isTTY: false, readAll: () => Promise.resolve(new TextEncoder().encode(input)) },
    keystore: (prefetch?: string) => {
      if (prefetch !== undefined) prefetched.push(prefetch);
      return Promise.resolve(resolution(keystore));
    },
  });
}

const CANARY = "canary-Pa55word-7f3e";

describe("gitCredential", () => {
  it("stores what git approved, answers get for it, and erases it when git rejects it", async () => {
    const keystore = createMemoryKeystore();
    const prefetched: string[] = [];
    const description = "protocol=https\nhost=git.example.com\nusername=me\n";
    const store = helperContext(`${description}password=${CANARY}\n`, keystore, prefetched);
    expect(await gitCredential(store, "store")).toBe(0);
    expect(store.stdout.text()).toBe("");
    expect(store.stderr.text()).toBe("");

    const get = helperContext("protocol=https\nhost=git.example.com\n", keystore, prefetched);
    expect(await gitCredential(get, "get")).toBe(0);
    expect(get.stdout.text()).toBe(`username=me\npassword=${CANARY}\n`);
    expect(get.stderr.text()).toBe("");

    const erase = helperContext(`${description}password=${CANARY}\n`, keystore, prefetched);
    expect(await gitCredential(erase, "erase")).toBe(0);
    expect(await keystore.list()).toEqual([]);
    // Each operation named its account, so the keychain probe can double as the first read.
    expect(prefetched).toEqual(Array(3).fill("git:https://git.example.com"));
  });

  it("prints nothing for get when nothing matches, so git goes on to the prompt", async () => {
    const keystore = createMemoryKeystore({
      "git:https://git.example.com": JSON.stringify({ username: "me", password: CANARY }),
    });
    const ctx = helperContext("protocol=http\nhost=git.example.com\n", keystore);
    expect(await gitCredential(ctx, "get")).toBe(0);
    expect(ctx.stdout.text()).toBe("");
  });

  it("refuses malformed input before touching the keystore or stdout", async () => {
    // The test context's keystore throws `Unexpected call to keystore` if reached.
    const ctx = createTestContext({
      stdin: {
        isTTY: false,
        readAll: () =>
          Promise.resolve(new TextEncoder().encode(`protocol=https\r\nhost=git.example.com\r\n`)),
      },
    });
    await expect(gitCredential(ctx, "get")).rejects.toMatchObject({ code: "LK_HELPER_INPUT_INVALID" });
    expect(ctx.stdout.text()).toBe("");
  });

  it("ignores operations it does not know without reading stdin (gitcredentials(7))", async () => {
    const ctx: Context = createTestContext();
    expect(await gitCredential(ctx, "capability")).toBe(0);
    expect(await gitCredential(ctx, "list")).toBe(0);
  });
});

describe("latchkey git-credential (through the full CLI)", () => {
  it("exits 2 with LK_HELPER_INPUT_INVALID on stderr, nothing on stdout, and no secret in the message", async () => {
    const ctx = helperContext(
      `protocol=https\nhost=git.example.com\npassword=${CANARY}\npassword=${CANARY}\n`,
      createMemoryKeystore(),
    );
    expect(await runCli(["git-credential", "store"], ctx)).toBe(2);
    expect(ctx.stdout.text()).toBe("");
    expect(ctx.stderr.text()).toContain("LK_HELPER_INPUT_INVALID");
    expect(ctx.stderr.text()).toContain("`password` is given more than once");
    expect(ctx.stderr.text()).not.toContain(CANARY);
  });

  it("answers get on stdout alone", async () => {
    const keystore = createMemoryKeystore({
      "git:https://git.example.com": JSON.stringify({ username: "me", password: CANARY }),
    });
    const ctx = helperContext("protocol=https\nhost=git.example.com\n", keystore);
    expect(await runCli(["git-credential", "get"], ctx)).toBe(0);
    expect(ctx.stdout.text()).toBe(`username=me\npassword=${CANARY}\n`);
    expect(ctx.stderr.text()).toBe("");
  });

  it("needs the operation", async () => {
    const ctx = createTestContext();
    expect(await runCli(["git-credential"], ctx)).toBe(2);
    expect(ctx.stderr.text()).toContain("LK_USAGE");
  });
});
