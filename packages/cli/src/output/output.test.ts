import { LatchkeyError } from "@latchkey/core";
import { describe, expect, it } from "vitest";
import { createTestContext } from "../../test/support/context.js";
import { colourEnabled, palette, printError, redact } from "./output.js";

describe("output", () => {
  it("colours only a TTY, and never with NO_COLOR or TERM=dumb", () => {
    const tty = { isTTY: true, write: () => undefined };
    const pipe = { isTTY: false, write: () => undefined };
    expect(colourEnabled({}, tty)).toBe(true);
    expect(colourEnabled({}, pipe)).toBe(false);
    expect(colourEnabled({ NO_COLOR: "1" }, tty)).toBe(false);
    expect(colourEnabled({ TERM: "dumb" }, tty)).toBe(false);
    expect(palette({ NO_COLOR: "1" }, tty).red("x")).toBe("x");
    expect(palette({}, tty).red("x")).toBe("\u001b[31mx\u001b[39m");
  });

  it("redacts credentials in diagnostic text", () => {
    expect(redact("Authorization: Bearer abc.def-ghi")).toBe("Authorization: Bearer [REDACTED]");
    expect(redact("POST /token?code=xyz123&state=s")).toBe("POST /token?code=[REDACTED]&state=s");
    expect(redact("refresh_token=r1 id_token=i1")).toBe("refresh_token=[REDACTED] id_token=[REDACTED]");
    expect(redact("failed for hunter2-passphrase", { LATCHKEY_PASSPHRASE: "hunter2-passphrase" })).toBe(
      "failed for [REDACTED]",
    );
    // LATCHKEY_HOME contains "KEY" but is not a secret: paths in messages must survive.
    expect(redact("/home/u/.latchkey/store.enc", { LATCHKEY_HOME: "/home/u/.latchkey" })).toBe(
      "/home/u/.latchkey/store.enc",
    );
  });

  it("prints a catalogue error as code, message and hint, returning its exit code", () => {
    const ctx = createTestContext();
    const code = printError(ctx, new LatchkeyError("LK_KEYRING_LOCKED"), 0);
    expect(code).toBe(3);
    expect(ctx.stderr.text()).toBe(
      "error LK_KEYRING_LOCKED: The OS keychain is locked.\n  hint: Unlock your login keyring (log in to the desktop, or `gnome-keyring-daemon --unlock`) and try again.\n",
    );
    expect(ctx.stdout.text()).toBe("");
  });

  it("shows causes only with -v and stacks only with -vv", () => {
    const error = new LatchkeyError("LK_KEYRING_FAILED", {
      cause: new Error("org.freedesktop.DBus.Error.Failed"),
    });
    const quiet = createTestContext();
    printError(quiet, error, 0);
    expect(quiet.stderr.text()).not.toContain("DBus");
    const verbose = createTestContext();
    printError(verbose, error, 1);
    expect(verbose.stderr.text()).toContain("cause: Error: org.freedesktop.DBus.Error.Failed");
    expect(verbose.stderr.text()).not.toContain("    at ");
  });

  it("with json, prints one JSON object on stderr: code, message, hint; causes with -v; secrets redacted", () => {
    const passphrase = "hunter2-passphrase";
    const error = new LatchkeyError("LK_STORE_DECRYPT_FAILED", {
      message: `Wrong passphrase ${passphrase}.`,
      cause: new Error(`tried ${passphrase}`),
    });
    const ctx = createTestContext({ env: { LATCHKEY_PASSPHRASE: passphrase } });
    const code = printError(ctx, error, 0, { json: true });
    expect(code).toBe(error.exitCode);
    expect(ctx.stdout.text()).toBe("");
    expect(JSON.parse(ctx.stderr.text())).toEqual({
      code: "LK_STORE_DECRYPT_FAILED",
      message: "Wrong passphrase [REDACTED].",
      hint: error.hint,
    });
    const verbose = createTestContext({ env: { LATCHKEY_PASSPHRASE: passphrase } });
    printError(verbose, error, 1, { json: true });
    expect(JSON.parse(verbose.stderr.text())).toMatchObject({ causes: ["Error: tried [REDACTED]"] });
    const internal = createTestContext();
    expect(printError(internal, new TypeError("boom"), 0, { json: true })).toBe(70);
    expect(JSON.parse(internal.stderr.text())).toMatchObject({ code: "LK_INTERNAL" });
  });

  it("turns an unexpected exception into a short LK_INTERNAL line without its message or stack", () => {
    const ctx = createTestContext();
    const code = printError(ctx, new TypeError("cannot read x of undefined (token=abc)"), 0);
    expect(code).toBe(70);
    const text = ctx.stderr.text();
    expect(text).toContain("LK_INTERNAL");
    expect(text).toContain("run with -v for detail");
    expect(text).not.toContain("cannot read");
    const verbose = createTestContext();
    printError(verbose, new TypeError("cannot read x of undefined (token=abc)"), 2);
    expect(verbose.stderr.text()).toContain("token=[REDACTED]");
    expect(verbose.stderr.text()).not.toContain("abc)");
  });
});
