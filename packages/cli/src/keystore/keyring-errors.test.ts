// The messages below were captured from @napi-rs/keyring 2.1.2 on Linux against gnome-keyring 42 / dbus 1.14 in
// private sessions (test/support/secret-service.ts), one session per failure class. "ctor" is the AsyncEntry
// constructor pinned to the Secret Service (libdbus), "find" is findCredentialsAsync (zbus).
import { describe, expect, it } from "vitest";
import { LatchkeyError, errorCatalogue } from "@latchkey/core";
import { classifyKeyringError } from "./keyring-errors.js";

/** An error shaped like the ones the native module throws: code GenericFailure, the inner error as `cause`. */
function nativeError(message: string, inner?: string): Error {
  return Object.assign(new Error(message), {
    code: "GenericFailure",
    ...(inner === undefined ? {} : { cause: Object.assign(new Error(inner), { code: "GenericFailure" }) }),
  });
}

const DENIED_CTOR =
  'Platform failure: DBus error: Rejected send message, 2 matched rules; type="method_call", sender=":1.1" ' +
  '(uid=0 pid=4696 comm="/usr/bin/node probe.mjs --timeout locked") interface="org.freedesktop.Secret.Service" ' +
  'member="OpenSession" error name="(unset)" requested_reply="0" destination="org.freedesktop.secrets" ' +
  '(uid=0 pid=4693 comm="gnome-keyring-daemon --unlock --components=secrets")';

const CAPTURED = {
  LK_KEYRING_UNREACHABLE: [
    // DBUS_SESSION_BUS_ADDRESS naming a socket that does not exist (ctor, find)
    "Platform failure: DBus error: Failed to connect to socket /tmp/nonexistent-bus: No such file or directory",
    "zbus error: Failed to connect to address `unix:path=/tmp/nonexistent-bus`: No such file or directory (os error 2)",
    // DBUS_SESSION_BUS_ADDRESS unset (ctor)
    "Platform failure: DBus error: Using X11 for dbus-daemon autolaunch was disabled at compile time, set your DBUS_SESSION_BUS_ADDRESS instead",
    // a bus with no Secret Service provider (ctor, find)
    "Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files",
    "zbus error: org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any .service files",
  ],
  LK_KEYRING_LOCKED: [
    // login collection locked, no prompter (get, set, delete; find)
    "Couldn't access platform storage: Secret Service: unlock prompt was dismissed",
    "zbus error: org.freedesktop.Secret.Error.IsLocked: Cannot get secret of a locked object",
    // gnome-keyring never unlocked: no default collection (set)
    "Couldn't access platform storage: Secret Service: no result found",
  ],
  LK_KEYRING_DENIED: [
    // bus policy <deny send_destination="org.freedesktop.secrets"/> (ctor, find)
    DENIED_CTOR,
    `zbus error: org.freedesktop.DBus.Error.AccessDenied: ${DENIED_CTOR.replace("Platform failure: DBus error: ", "")}`,
  ],
  LK_KEYRING_TIMEOUT: [
    // gnome-keyring stopped with SIGSTOP: libdbus gives up after dbus-secret-service's 2 s (ctor)
    "Platform failure: DBus error: Did not receive a reply. Possible causes include: the remote application did not send a reply, the message bus security policy blocked the reply, the reply timeout expired, or the network connection was broken.",
  ],
} as const;

describe("classifyKeyringError", () => {
  for (const [code, messages] of Object.entries(CAPTURED)) {
    it(`classifies the captured ${code} messages`, () => {
      for (const message of messages) {
        const inner = message.replace(/^(?:Platform failure|Couldn't access platform storage): /, "");
        const classified = classifyKeyringError(nativeError(message, inner));
        expect(classified, message).toBeInstanceOf(LatchkeyError);
        expect(classified.code, message).toBe(code);
      }
    });
  }

  it("classifies anything else as LK_KEYRING_FAILED", () => {
    // The first is real: what an unpinned entry reports from the kernel keyutils fallback in a container.
    for (const message of [
      "Couldn't access platform storage: AccessDenied",
      "Password data is not valid UTF-8",
      "",
    ]) {
      expect(classifyKeyringError(nativeError(message)).code, message).toBe("LK_KEYRING_FAILED");
    }
    expect(classifyKeyringError("a string").code).toBe("LK_KEYRING_FAILED");
    expect(classifyKeyringError(undefined).code).toBe("LK_KEYRING_FAILED");
  });

  it("classifies by the cause chain as well as the message", () => {
    const wrapped = new Error("keychain call failed", { cause: nativeError(CAPTURED.LK_KEYRING_LOCKED[0]) });
    expect(classifyKeyringError(wrapped).code).toBe("LK_KEYRING_LOCKED");
  });

  it("treats an abort as our own time limit", () => {
    const abort = Object.assign(new Error("AbortError"), { name: "AbortError" });
    expect(classifyKeyringError(abort).code).toBe("LK_KEYRING_TIMEOUT");
  });

  it("keeps the catalogue message and hint, and the keyring's text only as the cause", () => {
    const message = CAPTURED.LK_KEYRING_UNREACHABLE[3];
    const classified = classifyKeyringError(nativeError(message), {
      operation: "get",
      account: "registry://a/",
    });
    expect(classified.message).toBe(errorCatalogue.LK_KEYRING_UNREACHABLE.message);
    expect(classified.hint).toBe(errorCatalogue.LK_KEYRING_UNREACHABLE.hint);
    expect((classified.cause as Error).message).toBe(message);
    expect(classified.toJSON()).toEqual({
      code: "LK_KEYRING_UNREACHABLE",
      message: errorCatalogue.LK_KEYRING_UNREACHABLE.message,
      hint: errorCatalogue.LK_KEYRING_UNREACHABLE.hint,
      details: { operation: "get", account: "registry://a/" },
    });
  });

  it("says what to do when there is no default keyring", () => {
    const classified = classifyKeyringError(nativeError(CAPTURED.LK_KEYRING_LOCKED[2]));
    expect(classified.message).toMatch(/no default keyring/);
    expect(classified.hint).toMatch(/gnome-keyring-daemon --unlock/);
  });

  it("passes a LatchkeyError through unchanged", () => {
    const original = new LatchkeyError("LK_KEYRING_TIMEOUT");
    expect(classifyKeyringError(original)).toBe(original);
  });
});
