// Trust on first use of organisation members' sharing keys (docs/teams.md, "Trusting members' keys"). The server
// hands out the members and their public keys, and a share wraps the vault key for whatever it hands out: a server
// (or a stolen admin token) could list a key of its own, for a new account or in place of a member's, and read the
// next share. So this machine remembers the fingerprint of each member's key it wrapped for (org-keys.json under
// LATCHKEY_HOME), refuses a member whose key changed, and asks before wrapping for a member it has never seen. The
// first sight of a key is still the server's word: only a fingerprint compared out of band (`org trust`) is not.
//
// The file is written like every credential file (0600, atomic, never through a link, under a lock): whoever can
// write it decides which keys a share trusts.
import { join } from "node:path";
import {
  LatchkeyError,
  checkSchema,
  orgKeysFileSchema,
  type OrgKeyPin,
  type OrgKeysFile,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { checkPrivate, ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import { printStatus } from "../output/output.js";

/** The pin file under LATCHKEY_HOME. */
export const ORG_KEYS_FILE = "org-keys.json";

/** The flag that accepts the server's keys for members never seen before (never a changed key). */
export const TRUST_NEW_MEMBERS_FLAG = "--trust-new-members";

/** The path of the pin file. */
export function orgKeysPath(ctx: Pick<Context, "paths">): string {
  return join(ctx.paths.home, ORG_KEYS_FILE);
}

function corruptPins(file: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_STORE_CORRUPT", {
    message: `${file} is not a Latchkey file of pinned sharing keys (${why}).`,
    hint: "Move it aside: every organisation member's key is then asked about again at the next share.",
    details: { path: file },
  });
}

/** Reads the pin file; a missing one pins nothing. One that others could write is refused, not trusted. */
export async function readOrgKeys(ctx: Pick<Context, "paths">): Promise<OrgKeysFile> {
  const file = orgKeysPath(ctx);
  const bytes = await readFileSafe(file);
  if (bytes === null) return { version: 1, servers: {} };
  const report = await checkPrivate(file);
  if (report !== null && report.problems.length > 0) {
    throw new LatchkeyError("LK_FILE_PERMISSIONS", {
      message: `${file} ${report.problems.join("; ")}; its pinned sharing keys are not trusted.`,
      details: { path: file },
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw corruptPins(file, "not JSON");
  }
  const checked = checkSchema(orgKeysFileSchema, doc);
  if (!checked.ok)
    throw corruptPins(file, `${[...checked.path].join(".") || "the file"}: ${checked.message}`);
  return checked.value;
}

/** The pins of `org` on `server`, by lower-case user id. */
export function pinsOf(file: OrgKeysFile, server: string, org: string): Readonly<Record<string, OrgKeyPin>> {
  return file.servers[server]?.[org] ?? {};
}

/** A member's key as the server lists it, with the fingerprint computed here from the key itself. */
export interface Recipient {
  readonly userId: string;
  readonly email: string;
  /** Null when the member is not in the members list the server sent beside the keys. */
  readonly role: string | null;
  readonly fingerprint: string;
}

/** How a member's key stands against this machine's pins. */
export type PinState = "pinned" | "new" | "changed";

/**
 * `recipient`'s state: pinned (same fingerprint), changed (another fingerprint pinned for the user id, or for
 * the email under another user id: a server could otherwise replace a member by a new account of the same
 * email), or new.
 */
export function pinState(
  pins: Readonly<Record<string, OrgKeyPin>>,
  recipient: Pick<Recipient, "userId" | "email" | "fingerprint">,
): PinState {
  const pin = pins[recipient.userId.toLowerCase()];
  if (pin !== undefined) return pin.fingerprint === recipient.fingerprint ? "pinned" : "changed";
  const email = recipient.email.toLowerCase();
  const sameEmail = Object.values(pins).some(
    (p) => p.email.toLowerCase() === email && p.fingerprint !== recipient.fingerprint,
  );
  return sameEmail ? "changed" : "new";
}

/** Pins `recipients`' keys for `org` on `server` (replacing any pin of their user ids), under the file's lock. */
export async function pinOrgKeys(
  ctx: Pick<Context, "paths" | "clock">,
  server: string,
  org: string,
  recipients: readonly Pick<Recipient, "userId" | "email" | "fingerprint">[],
): Promise<void> {
  if (recipients.length === 0) return;
  await ensurePrivateDir(ctx.paths.home);
  const file = orgKeysPath(ctx);
  await withFileLock(file, async (signal) => {
    const doc = await readOrgKeys(ctx);
    const orgs = (doc.servers[server] ??= {});
    const pins = (orgs[org] ??= {});
    const firstSeen = new Date(ctx.clock.now()).toISOString();
    for (const r of recipients) {
      const userId = r.userId.toLowerCase();
      // Drop a pin of the same email under another account: the one confirmed now replaces it.
      for (const [id, pin] of Object.entries(pins))
        if (id !== userId && pin.email.toLowerCase() === r.email.toLowerCase()) delete pins[id];
      pins[userId] = { email: r.email, fingerprint: r.fingerprint, firstSeen };
    }
    signal.throwIfAborted();
    await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
  });
}

/**
 * Forgets the pin of `userId` in `org` on `server` (a member removed from it), under the file's lock: a key pinned
 * for a former member must not keep the standing of a key this machine checked, should they come back.
 */
export async function unpinOrgKey(
  ctx: Pick<Context, "paths">,
  server: string,
  org: string,
  userId: string,
): Promise<void> {
  const id = userId.toLowerCase();
  // Nothing pinned (no file at all, often): nothing to lock or write.
  if (pinsOf(await readOrgKeys(ctx), server, org)[id] === undefined) return;
  const file = orgKeysPath(ctx);
  await withFileLock(file, async (signal) => {
    const doc = await readOrgKeys(ctx);
    const pins = doc.servers[server]?.[org];
    if (pins?.[id] === undefined) return;
    delete pins[id];
    signal.throwIfAborted();
    await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
  });
}

/**
 * What the keys under review are for: the recipients of a share (`share`), or the sharer who wrapped an
 * organisation copy's vault key this machine is about to open (`open`, docs/teams.md "Who wrapped a key"). The
 * rules are the same; the words say what is at stake.
 */
export type KeyUse = { readonly kind: "share" } | { readonly kind: "open"; readonly vaultId: string };

function wording(use: KeyUse, server: string, org: string) {
  if (use.kind === "share") {
    return {
      done: "nothing was shared",
      changed: `${server} lists sharing keys for members of ${org} that are not the ones this machine pinned`,
      again: "share again",
      fresh: `${server} lists members of ${org} whose sharing keys this machine has never wrapped for`,
      risk: "a key the server made up would read everything shared from now on",
      question: (one: boolean) => `Trust ${one ? "this key" : "these keys"} and share with them?`,
      declined: "You did not trust the new members' sharing keys",
    };
  }
  const copy = `${org}'s copy of vault ${use.vaultId}`;
  return {
    done: "nothing was written",
    changed: `${server} says the key of ${copy} was wrapped by a member whose sharing key is not the one this machine pinned for them`,
    again: "pull again",
    fresh: `The key of ${copy} was wrapped by a member whose sharing key this machine has never seen`,
    risk: "a key the server made up would hand you secrets of its choosing",
    question: () => "Trust this key and open what it wrapped?",
    declined: "You did not trust the sharing key that wrapped the organisation's vault key",
  };
}

/**
 * Checks members' keys against this machine's pins before any is used, and pins nothing: a pinned key passes; a
 * changed one is LK_ORG_MEMBER_KEY_CHANGED, always; new ones are shown and asked about on a terminal (y/N),
 * accepted without asking with `trustNewMembers`, else LK_ORG_MEMBER_UNTRUSTED. Returns the new keys accepted,
 * for the caller to pin ({@link pinOrgKeys}) once it has used them. `keys` excludes the caller, whose key is
 * checked against this machine's own.
 */
export async function reviewKeys(
  ctx: Context,
  server: string,
  org: string,
  keys: readonly Recipient[],
  trustNewMembers: boolean,
  use: KeyUse,
): Promise<Recipient[]> {
  const words = wording(use, server, org);
  const describe = (r: Recipient) => `  ${r.email}  ${r.role ?? "(role not listed)"}  ${r.fingerprint}`;
  const pins = pinsOf(await readOrgKeys(ctx), server, org);
  const changed = keys.filter((r) => pinState(pins, r) === "changed");
  if (changed.length > 0) {
    const first = changed[0]!;
    throw new LatchkeyError("LK_ORG_MEMBER_KEY_CHANGED", {
      message:
        `${words.changed}; ${words.done}:\n` +
        changed
          .map((r) => {
            const pin = pins[r.userId.toLowerCase()];
            return `${describe(r)} (pinned: ${pin?.fingerprint ?? "another account's key under this email"})`;
          })
          .join("\n"),
      hint:
        `A member who ran \`latchkey env rotate-sharing-key\` has a new key; anyone else's change may be the server's key. ` +
        `Ask ${first.email}, by a channel other than the server, for the fingerprint \`latchkey org members ${org}\` shows as their machine's sharing key; ` +
        `if it is the one above, run \`latchkey org trust ${org} ${first.email} FINGERPRINT\`, then ${words.again}.`,
      details: { server, org, members: changed.map((r) => r.userId) },
    });
  }
  const fresh = keys.filter((r) => pinState(pins, r) === "new");
  if (fresh.length === 0) return [];
  const list = fresh.map(describe).join("\n");
  if (trustNewMembers) {
    printStatus(
      ctx,
      `Trusting the sharing keys ${server} lists for new members of ${org} (${TRUST_NEW_MEMBERS_FLAG}):\n${list}`,
    );
  } else if (ctx.stdin.isTTY && ctx.stderr.isTTY) {
    printStatus(
      ctx,
      `${words.fresh}:\n${list}\n` +
        `Compare each fingerprint with the one the member sees (\`latchkey org members\` on their machine) before saying yes: ${words.risk}.`,
    );
    if (!(await ctx.prompts.confirm(words.question(fresh.length === 1), false))) {
      throw new LatchkeyError("LK_ORG_MEMBER_UNTRUSTED", {
        message: `${words.declined}; ${words.done}.`,
        hint: `Verify the fingerprints with the members, then run the command again (or pin each with \`latchkey org trust ${org} EMAIL FINGERPRINT\`).`,
        details: { server, org, members: fresh.map((r) => r.userId) },
      });
    }
  } else {
    throw new LatchkeyError("LK_ORG_MEMBER_UNTRUSTED", {
      message: `${words.fresh}, and there is no terminal to confirm them on; ${words.done}:\n${list}`,
      hint: `Run it on a terminal to review them, or pin each after checking its fingerprint with the member: \`latchkey org trust ${org} EMAIL FINGERPRINT\`. ${TRUST_NEW_MEMBERS_FLAG} accepts whatever keys the server sends for new members (a changed key is refused all the same).`,
      details: { server, org, members: fresh.map((r) => r.userId) },
    });
  }
  return fresh;
}

/**
 * Checks the members a vault key is about to be wrapped for against this machine's pins ({@link reviewKeys}),
 * before anything is sent, and pins the new keys accepted.
 */
export async function checkRecipients(
  ctx: Context,
  server: string,
  org: string,
  recipients: readonly Recipient[],
  trustNewMembers: boolean,
): Promise<void> {
  await pinOrgKeys(
    ctx,
    server,
    org,
    await reviewKeys(ctx, server, org, recipients, trustNewMembers, { kind: "share" }),
  );
}
