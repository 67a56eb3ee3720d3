// Which copies this machine's user agreed to escrow for CI pulls (docs/ci.md, "Re-escrow on pushes and shares").
// A push answered 409 LK_CI_ESCROW_STALE re-sends itself with the copy's key wrapped for the server's escrow key:
// on the server's word alone, a malicious server could answer every push that way and collect every vault key. So
// the key goes only to a copy recorded here, for the escrow key recorded with it — recorded when `env ci enable`
// succeeds or `env ci show --accept` is run, or when the user agrees on a terminal — and `env ci disable` forgets it.
//
// ci-escrows.json is written like every credential file (0600, atomic, never through a link, under a lock): whoever
// can write it decides which copies a push hands to the server.
import { join } from "node:path";
import {
  LatchkeyError,
  canonicalVaultId,
  checkSchema,
  ciEscrowsFileSchema,
  type CiEscrowConsent,
  type CiEscrowsFile,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { checkPrivate, ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import { printStatus } from "../output/output.js";
import { orgFlag } from "../sync/project.js";

/** The consent file under LATCHKEY_HOME. */
export const CI_ESCROWS_FILE = "ci-escrows.json";

/** One copy on one server for one account: what a consent is recorded for. */
export interface EscrowedCopy {
  readonly server: string;
  readonly userId: string;
  readonly vaultId: string;
  /** The organisation whose copy it is; absent for the personal copy. */
  readonly org?: string | undefined;
}

const consentPath = (ctx: Pick<Context, "paths">): string => join(ctx.paths.home, CI_ESCROWS_FILE);

const sameCopy = (entry: CiEscrowConsent, copy: EscrowedCopy): boolean =>
  entry.server === copy.server &&
  entry.userId.toLowerCase() === copy.userId.toLowerCase() &&
  canonicalVaultId(entry.vaultId) === canonicalVaultId(copy.vaultId) &&
  entry.org === copy.org;

function corrupt(file: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_STORE_CORRUPT", {
    message: `${file} is not a Latchkey file of copies escrowed for CI (${why}).`,
    hint: "Move it aside: a push then asks again before it escrows a copy's key for the server.",
    details: { path: file },
  });
}

/** Reads the consent file; a missing one holds no consent. One that others could write is refused, not trusted. */
async function readConsents(ctx: Pick<Context, "paths">): Promise<CiEscrowsFile> {
  const file = consentPath(ctx);
  const bytes = await readFileSafe(file);
  if (bytes === null) return { version: 1, copies: [] };
  const report = await checkPrivate(file);
  if (report !== null && report.problems.length > 0) {
    throw new LatchkeyError("LK_FILE_PERMISSIONS", {
      message: `${file} ${report.problems.join("; ")}; the copies it records as escrowed for CI are not trusted.`,
      details: { path: file },
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw corrupt(file, "not JSON");
  }
  const checked = checkSchema(ciEscrowsFileSchema, doc);
  if (!checked.ok) throw corrupt(file, `${[...checked.path].join(".") || "the file"}: ${checked.message}`);
  return checked.value;
}

/** The consent recorded for `copy`, or null. */
export async function findEscrowConsent(
  ctx: Pick<Context, "paths">,
  copy: EscrowedCopy,
): Promise<CiEscrowConsent | null> {
  return (await readConsents(ctx)).copies.find((e) => sameCopy(e, copy)) ?? null;
}

async function update(
  ctx: Pick<Context, "paths">,
  change: (copies: CiEscrowConsent[]) => CiEscrowConsent[],
): Promise<void> {
  await ensurePrivateDir(ctx.paths.home);
  const file = consentPath(ctx);
  await withFileLock(file, async (signal) => {
    const doc = await readConsents(ctx);
    doc.copies = change(doc.copies);
    signal.throwIfAborted();
    await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
  });
}

/** Records that `copy`'s key may be escrowed for the escrow key of `escrowKeyFingerprint` (replacing any record). */
export async function recordEscrowConsent(
  ctx: Pick<Context, "paths" | "clock">,
  copy: EscrowedCopy,
  escrowKeyFingerprint: string,
): Promise<void> {
  const entry: CiEscrowConsent = {
    server: copy.server,
    userId: copy.userId,
    vaultId: canonicalVaultId(copy.vaultId),
    ...(copy.org === undefined ? {} : { org: copy.org }),
    escrowKeyFingerprint,
    at: new Date(ctx.clock.now()).toISOString(),
  };
  await update(ctx, (copies) => [...copies.filter((e) => !sameCopy(e, copy)), entry]);
}

/**
 * Forgets `copy`'s consent (`env ci disable`); without a user id, every account's on that server. Nothing to do
 * when there is none.
 */
export async function forgetEscrowConsent(
  ctx: Pick<Context, "paths">,
  copy: Omit<EscrowedCopy, "userId"> & { userId?: string },
): Promise<void> {
  const matches = (e: CiEscrowConsent) => sameCopy(e, { ...copy, userId: copy.userId ?? e.userId });
  if (!(await readConsents(ctx)).copies.some(matches)) return;
  await update(ctx, (copies) => copies.filter((e) => !matches(e)));
}

/**
 * Before a push escrows `copy`'s key for the server's escrow key `fingerprint`: passes when the copy is recorded
 * for that key; else, on a terminal, says what is asked and that the server will be able to decrypt the copy, and
 * records the answer yes; else (no terminal, or no) LK_CI_ESCROW_UNCONFIRMED naming the copy, before anything is
 * sent.
 */
export async function requireEscrowConsent(
  ctx: Context,
  copy: EscrowedCopy,
  fingerprint: string,
  what: string,
): Promise<void> {
  const consent = await findEscrowConsent(ctx, copy);
  if (consent?.escrowKeyFingerprint === fingerprint) return;
  const why =
    consent === null
      ? `this machine has no record that you enabled CI pulls of ${what} or agreed to its escrow`
      : `the server's escrow key is now ${fingerprint.slice(0, 16)}…, not ${consent.escrowKeyFingerprint.slice(0, 16)}… which you agreed to`;
  const flag = orgFlag(copy.org);
  if (ctx.stdin.isTTY && ctx.stderr.isTTY) {
    printStatus(
      ctx,
      `${copy.server} asks for the key of ${what} to be escrowed for CI pulls, and ${why}. If you agree, the server will be able to decrypt ${what} from now on (\`latchkey env ci show${flag}\` shows its CI policy).`,
    );
    if (await ctx.prompts.confirm(`Escrow the key of ${what} for ${copy.server}?`, false)) {
      await recordEscrowConsent(ctx, copy, fingerprint);
      return;
    }
  }
  throw new LatchkeyError("LK_CI_ESCROW_UNCONFIRMED", {
    message: `${copy.server} asked this write to escrow the key of ${what} for CI pulls, and ${why}. The key was not sent and nothing was written.`,
    hint: `Check the policy with \`latchkey env ci show${flag}\`; if the server should be able to decrypt ${what}, run \`latchkey env ci show${flag} --accept\`, then run the command again. Else \`latchkey env ci disable${flag}\` turns CI pulls of it off.`,
    details: {
      vaultId: copy.vaultId,
      ...(copy.org === undefined ? {} : { org: copy.org }),
      escrowKeyFingerprint: fingerprint,
    },
  });
}
