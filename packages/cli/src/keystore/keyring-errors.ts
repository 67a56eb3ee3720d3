// @napi-rs/keyring rejects every failure with code "GenericFailure", so the only thing that tells a missing
// Secret Service from a locked or refusing one is the message text, which comes from three layers: keyring-core
// ("Couldn't access platform storage: …", "Platform failure: …"), dbus-secret-service ("Secret Service: …",
// "DBus error: …", libdbus text) for entry operations, and zbus ("zbus error: …", D-Bus error names) for
// findCredentialsAsync. The patterns below are the texts captured from those layers against a real gnome-keyring
// (see keyring-errors.test.ts and keyring.test.ts), plus the macOS Security framework's, which are by message only.
import { LatchkeyError, isLatchkeyError, type ErrorCode } from "@latchkey/core";

type KeyringErrorCode = Extract<
  ErrorCode,
  "LK_KEYRING_UNREACHABLE" | "LK_KEYRING_LOCKED" | "LK_KEYRING_DENIED" | "LK_KEYRING_TIMEOUT"
>;

interface Rule {
  readonly code: KeyringErrorCode;
  readonly pattern: RegExp;
  readonly message?: string;
  readonly hint?: string;
}

// Order matters. A bus policy rejection quotes the caller's command line (`comm="…"`), which may contain any word,
// so it is recognised first; the rest match phrases that only the D-Bus and keyring layers produce.
const RULES: readonly Rule[] = [
  { code: "LK_KEYRING_DENIED", pattern: /Rejected send message|org\.freedesktop\.DBus\.Error\.AccessDenied/ },
  // macOS: a keychain access prompt answered "Deny", or a wrong keychain password.
  {
    code: "LK_KEYRING_DENIED",
    pattern: /User canceled the operation|passphrase you entered is not correct/i,
  },

  {
    code: "LK_KEYRING_TIMEOUT",
    pattern:
      /Did not receive a reply|org\.freedesktop\.DBus\.Error\.(?:NoReply|Timeout|TimedOut)|\btimed out\b/i,
  },

  {
    code: "LK_KEYRING_LOCKED",
    pattern:
      /object locked|locked object|org\.freedesktop\.Secret\.Error\.IsLocked|prompt (?:was )?dismissed/i,
  },
  { code: "LK_KEYRING_LOCKED", pattern: /connection closed before prompt completed/i },
  // macOS: the keychain is locked and no prompt may be shown (errSecInteractionNotAllowed).
  { code: "LK_KEYRING_LOCKED", pattern: /User interaction is not allowed/i },
  // The provider runs but has no default collection (a fresh gnome-keyring never unlocked): creating one needs a
  // prompt, so nothing can be stored until the user sets up a login keyring.
  {
    code: "LK_KEYRING_LOCKED",
    pattern: /Secret Service: no result found/,
    message: "The OS keychain has no default keyring to store into.",
    hint: "Create and unlock a login keyring (log in to the desktop, or `gnome-keyring-daemon --unlock`), then try again.",
  },

  {
    code: "LK_KEYRING_UNREACHABLE",
    pattern:
      /No DBus session or Secret Service provider found|no secret service provider or dbus session found|was not provided by any \.service files|org\.freedesktop\.DBus\.Error\.(?:ServiceUnknown|NameHasNoOwner|NoServer|Disconnected|FileNotFound|Spawn\.\w+)/i,
  },
  {
    code: "LK_KEYRING_UNREACHABLE",
    pattern:
      /Failed to connect to (?:socket|address)|autolaunch|DBUS_SESSION_BUS_ADDRESS|D-Bus handshake failed|disconnected from D-Bus|Connection refused/i,
  },
];

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The error text of `err` and of its causes, joined, for matching. */
function describe(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth += 1) {
    if (current instanceof Error) {
      parts.push(current.message);
      current = current.cause;
    } else {
      parts.push(typeof current === "string" ? current : safeStringify(current));
      break;
    }
  }
  return parts.join("\n");
}

/** The keyring's own text as a plain Error: kept only as `cause` (shown with -v), never in message or details. */
function causeOf(err: unknown): Error {
  return new Error(err instanceof Error ? err.message : describe(err));
}

/**
 * Maps an error thrown by @napi-rs/keyring to the catalogue: LK_KEYRING_UNREACHABLE, LK_KEYRING_LOCKED,
 * LK_KEYRING_DENIED, LK_KEYRING_TIMEOUT, or LK_KEYRING_FAILED for anything unrecognised. A LatchkeyError passes
 * through unchanged. `details` (non-secret: operation, account) is attached for --json.
 */
export function classifyKeyringError(err: unknown, details?: Record<string, unknown>): LatchkeyError {
  if (isLatchkeyError(err)) return err;
  const options = { cause: causeOf(err), ...(details ? { details } : {}) };
  // We abort a native call only when our own time limit has passed.
  if (err instanceof Error && err.name === "AbortError")
    return new LatchkeyError("LK_KEYRING_TIMEOUT", options);
  const text = describe(err);
  for (const rule of RULES) {
    if (rule.pattern.test(text)) {
      return new LatchkeyError(rule.code, {
        ...options,
        ...(rule.message === undefined ? {} : { message: rule.message }),
        ...(rule.hint === undefined ? {} : { hint: rule.hint }),
      });
    }
  }
  return new LatchkeyError("LK_KEYRING_FAILED", options);
}
