import { LatchkeyError } from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { createTestContext } from "../test/support/context.js";
import { runCli } from "./cli.js";
import { createMemoryKeystore } from "./keystore/memory.js";
import type { KeystoreResolution } from "./keystore/resolve.js";

function withKeystore(initial: Record<string, string> = {}) {
  const keystore = createMemoryKeystore(initial);
  const resolution: KeystoreResolution = {
    keystore,
    backend: "memory",
    reason: "forced",
    degraded: false,
    explanation: "test",
    promoted: 0,
    fileStore: { exists: false, protection: null },
  };
  return { keystore, resolve: () => Promise.resolve(resolution) };
}

describe("runCli", () => {
  it("prints help on stdout and exits 0", async () => {
    const ctx = createTestContext();
    expect(await runCli(["--help"], ctx)).toBe(0);
    expect(ctx.stdout.text()).toContain("Usage: latchkey");
    expect(ctx.stdout.text()).toContain("doctor");
  });

  it("maps commander usage errors to LK_USAGE with exit code 2", async () => {
    const ctx = createTestContext();
    expect(await runCli(["doctor", "--no-such-flag"], ctx)).toBe(2);
    expect(ctx.stderr.text()).toContain("error LK_USAGE: Unknown option '--no-such-flag'");
    expect(ctx.stderr.text()).toContain("hint:");
  });

  it("never echoes extra arguments or option values, which may be pasted secrets", async () => {
    const extra = createTestContext();
    expect(await runCli(["keystore", "get", "a", "ghp_pasted_secret"], extra)).toBe(2);
    expect(extra.stderr.text()).toContain("Too many arguments for 'get'. Expected 1 argument but got 2.");
    expect(extra.stderr.text()).not.toContain("ghp_pasted_secret");
    const option = createTestContext();
    expect(await runCli(["doctor", "--password=hunter2secret"], option)).toBe(2);
    expect(option.stderr.text()).toContain("Unknown option '--password=");
    expect(option.stderr.text()).not.toContain("hunter2secret");
  });

  it("prints a command's LatchkeyError with its exit code", async () => {
    const ctx = createTestContext({
      keystore: () => Promise.reject(new LatchkeyError("LK_KEYRING_LOCKED")),
    });
    expect(await runCli(["keystore", "list"], ctx)).toBe(3);
    expect(ctx.stderr.text()).toContain("LK_KEYRING_LOCKED");
  });

  it("keystore get prints the value alone; set reads stdin, never argv", async () => {
    const { keystore, resolve } = withKeystore({ a: "value-a" });
    const get = createTestContext({ keystore: resolve });
    expect(await runCli(["keystore", "get", "a"], get)).toBe(0);
    expect(get.stdout.text()).toBe("value-a");

    const set = createTestContext({
      keystore: resolve,
      stdin: { isTTY: false, readAll: () => Promise.resolve(new TextEncoder().encode("from-stdin\n")) },
    });
    expect(await runCli(["keystore", "set", "b"], set)).toBe(0);
    expect(await keystore.get("b")).toBe("from-stdin");
    expect(set.stdout.text()).toBe("");
  });

  it("keystore set uses the masked prompt on a TTY", async () => {
    const { keystore, resolve } = withKeystore();
    const ctx = createTestContext({
      keystore: resolve,
      stderrTTY: true,
      stdin: { isTTY: true, readAll: () => Promise.reject(new Error("must not read stdin on a TTY")) },
      prompts: { secret: () => Promise.resolve("typed"), confirm: () => Promise.resolve(false) },
    });
    expect(await runCli(["keystore", "set", "c"], ctx)).toBe(0);
    expect(await keystore.get("c")).toBe("typed");
  });

  it("keystore list --json lists names, never values", async () => {
    const { resolve } = withKeystore({ b: "secret-b", a: "secret-a" });
    const ctx = createTestContext({ keystore: resolve });
    expect(await runCli(["keystore", "list", "--json"], ctx)).toBe(0);
    expect(JSON.parse(ctx.stdout.text())).toEqual({ backend: "memory", accounts: ["a", "b"] });
    expect(ctx.stdout.text()).not.toContain("secret-");
  });

  it("rejects empty input", async () => {
    const { resolve } = withKeystore();
    const ctx = createTestContext({
      keystore: resolve,
      stdin: { isTTY: false, readAll: () => Promise.resolve(new Uint8Array()) },
    });
    expect(await runCli(["keystore", "set", "x"], ctx)).toBe(2);
    expect(ctx.stderr.text()).toContain("LK_INPUT_EMPTY");
  });
});

describe("help, -v and --json on any command", () => {
  it("`help <command…>` shows that command's help; an unknown name fails like an unknown command", async () => {
    const nested = createTestContext();
    expect(await runCli(["help", "env", "set"], nested)).toBe(0);
    expect(nested.stdout.text()).toContain("Usage: latchkey env set");
    const cases: [string[], string][] = [
      [["help", "nosuch"], "nosuch"],
      [["help", "env", "nosuch"], "env nosuch"],
      [["env", "help", "nosuch"], "env nosuch"],
    ];
    for (const [argv, name] of cases) {
      const ctx = createTestContext();
      expect(await runCli(argv, ctx), argv.join(" ")).toBe(2);
      expect(ctx.stderr.text()).toContain(`error LK_USAGE: Unknown command '${name}'.`);
      expect(ctx.stdout.text()).toBe("");
    }
  });

  it("takes -v after the command as well as before it, and counts every one", async () => {
    const missing = "/nonexistent/latchkey-test/secrets.env";
    for (const argv of [
      ["env", "import", missing, "-v"],
      ["env", "-v", "import", missing],
      ["-v", "env", "import", missing],
    ]) {
      const ctx = createTestContext();
      expect(await runCli(argv, ctx), argv.join(" ")).toBe(1);
      expect(ctx.stderr.text()).toContain("cause: Error: ENOENT");
      expect(ctx.stderr.text()).not.toContain("    at ");
    }
    const twice = createTestContext();
    expect(await runCli(["-v", "env", "import", missing, "-v"], twice)).toBe(1);
    expect(twice.stderr.text()).toContain("    at ");
  });

  it("says that a file given to `env import` does not exist, not where LATCHKEY_HOME is", async () => {
    const ctx = createTestContext();
    expect(await runCli(["env", "import", "missing.env"], ctx)).toBe(1);
    expect(ctx.stderr.text()).toContain("LK_FILE_IO: /nonexistent/project/missing.env does not exist.");
    expect(ctx.stderr.text()).toContain("a relative path starts at /nonexistent/project");
    expect(ctx.stderr.text()).not.toContain("LATCHKEY_HOME");
  });

  it("with --json, prints an error as one JSON object on stderr, with the same exit code", async () => {
    const locked = () =>
      createTestContext({ keystore: () => Promise.reject(new LatchkeyError("LK_KEYRING_LOCKED")) });
    const text = locked();
    const json = locked();
    expect(await runCli(["keystore", "list"], text)).toBe(3);
    expect(await runCli(["keystore", "list", "--json"], json)).toBe(3);
    expect(json.stdout.text()).toBe("");
    const expected = new LatchkeyError("LK_KEYRING_LOCKED");
    expect(JSON.parse(json.stderr.text())).toEqual({
      code: "LK_KEYRING_LOCKED",
      message: expected.message,
      hint: expected.hint,
    });
    // A usage error too: the command line asked for JSON even though commander refused it.
    const usage = createTestContext();
    expect(await runCli(["keystore", "list", "--json", "--bogus"], usage)).toBe(2);
    expect(JSON.parse(usage.stderr.text())).toMatchObject({ code: "LK_USAGE" });
    // A command without --json keeps the text form, whatever the words after `--` say.
    const other = createTestContext();
    expect(await runCli(["keystore", "get", "--", "--json"], other)).not.toBe(0);
    expect(other.stderr.text()).toMatch(/^error LK_/);
  });
});
