// The two ends of a pairing (docs/pairing.md): `latchkey pair` on the new machine N, which receives the wrapping
// key (and the account's sharing key, when A has one), and `latchkey env pair CODE` on the machine A that has it.
// Each side polls for the other's step (pairing.ts). Anything that stops a side between its first request and the
// end of its part (Ctrl-C, the deadline, a failed check, a "no") revokes the pairing on the server, best effort,
// so the other side stops too.
import {
  LatchkeyError,
  PAIRING_NONCE_BYTES,
  PAIRING_TTL_SECONDS,
  constantTimeEqual,
  fromBase64,
  generatePairingKeyPair,
  isLatchkeyError,
  normalizePairingCode,
  openPairingKey,
  pairingCommitment,
  pairingCommitmentMatches,
  pairingComparisonValue,
  pairingKeyFingerprint,
  sealPairingKey,
  toBase64,
  type PairingKeys,
  type PairingView,
} from "@latchkey/core";
import { join } from "node:path";
import type { Context } from "../context.js";
import { withFileLock } from "../fs/lock.js";
import { ensurePrivateDir } from "../fs/safe-file.js";
import { palette, printStatus } from "../output/output.js";
import type { ApiOptions } from "../server/api.js";
import { mintStepUpProof } from "../server/step-up.js";
import {
  PENDING_SHARING_KEY_ACCOUNT,
  SHARING_KEY_ACCOUNT,
  adoptSharingKey,
  readSharingKey,
  underSharingKeyLock,
  type SharingKeyAdoption,
} from "../sharing/sharing-key.js";
import { WRAPPING_KEY_ACCOUNT, readPendingWrappingKey, readWrappingKey } from "../vault/wrapping-key.js";
import {
  approvePairingRequest,
  consumePairing,
  DEFAULT_PAIRING_TIMEOUT,
  createPairing,
  interrupted,
  defaultPairingLabel,
  formatComparisonValue,
  joinPairing,
  pairingEnded,
  pairingLabelOption,
  pairingTimeout,
  revealPairing,
  revokeQuietly,
  unlessInterrupted,
  waitForPairing,
  watchInterrupts,
  type InterruptWatch,
} from "./pairing.js";
import { adoptWrappingKey, type AdoptOutcome } from "./rotate.js";
import { isPersonalEntry, listSyncEntries } from "./state.js";

/** Which server, and how loud. */
export interface PairServerOptions {
  server?: string;
  profile?: string;
  verbose?: number;
}

/** Options of `latchkey pair`. */
export interface PairOptions extends PairServerOptions {
  /** `--label`; default: the host name. */
  label?: string;
  /** `--timeout`, as typed; default 5m. */
  timeout?: string;
}

/** What `latchkey pair` did (its `--json`). */
export interface PairOutcome {
  pairingId: string;
  label: string;
  server: string;
  /** What adopting the received key changed on this machine. */
  adoption: AdoptOutcome;
  /** What became of the sharing key the other machine sent, if it sent one. */
  sharingKey: SharingKeyAdoption;
}

/** Options of `latchkey env pair CODE`. */
export interface ApprovePairOptions extends PairServerOptions {
  code: string;
  /** `--yes`: approve without asking (the only way without a terminal). */
  yes: boolean;
}

/** What `latchkey env pair` did (its `--json`). */
export interface ApprovePairOutcome {
  pairingId: string;
  label: string;
  server: string;
  /** Fingerprint of the new machine's key, as shown. */
  fingerprint: string;
  /** The synced vaults of this account on that server this machine knows of: the new machine can pull them. */
  vaults: string[];
  /** Whether this machine's sharing key went with the wrapping key (it has one). */
  sharingKey: boolean;
}

function apiOptions(options: PairServerOptions): ApiOptions {
  return {
    verbose: options.verbose ?? 0,
    ...(options.server === undefined ? {} : { server: options.server }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
  };
}

const relayWarning =
  "Someone may be relaying the connection between your machines: do not approve, and start again with `latchkey pair` on the new machine.";

/**
 * Runs `body` for an open pairing: whatever makes it fail (Ctrl-C, the deadline, a failed check, a refusal)
 * revokes the pairing, best effort, before the error goes on; an error that says the pairing is already over
 * needs no revocation.
 */
async function revokingOnFailure<T>(
  ctx: Context,
  pairing: { pairingId: string; expiresAt: string },
  options: ApiOptions,
  interrupts: InterruptWatch,
  body: () => Promise<T>,
): Promise<T> {
  try {
    return await body();
  } catch (error) {
    const over =
      isLatchkeyError(error, "LK_PAIRING_FAILED") &&
      ["revoked", "expired", "consumed"].includes(String(error.details?.status));
    if (!over && !isLatchkeyError(error, "LK_PAIRING_NOT_FOUND")) {
      await revokeQuietly(ctx, pairing.pairingId, pairing.expiresAt, options);
    }
    throw error;
  } finally {
    interrupts.release();
  }
}

/**
 * `latchkey pair`, on the new machine: mints a `vault:pair` step-up proof, starts a pairing committed to a fresh
 * P-256 key, shows the code and the command for the other machine, waits for it to join, reveals the key, shows
 * the 6 digits to compare, waits for the approval, takes the sealed keys once and adopts the wrapping key (the
 * crash-safe steps of `env rotate-key`), then the sharing key if one came (adoptSharingKey). Ctrl-C
 * (LK_CANCELLED) and the timeout (LK_PAIRING_FAILED) revoke the pairing on the server.
 */
export async function pairNewMachine(ctx: Context, options: PairOptions): Promise<PairOutcome> {
  const label =
    options.label === undefined
      ? defaultPairingLabel(ctx.platform.hostname)
      : pairingLabelOption(options.label);
  const timeoutMs = pairingTimeout(options.timeout);
  // adoptWrappingKey and adoptSharingKey refuse too, but only after the keys were handed over, which the server
  // does once.
  await refuseDuringRotation(ctx, "adopt");
  await refuseDuringSharingKeyRotation(ctx, "adopt");
  const proof = await mintStepUpProof(ctx, "vault:pair", apiOptions(options));
  // Every later request goes to the server that minted the proof.
  const api: ApiOptions = { ...apiOptions(options), server: proof.server };

  const keyPair = await generatePairingKeyPair();
  const nonce = ctx.random.bytes(PAIRING_NONCE_BYTES);
  const commitment = await pairingCommitment(keyPair.publicKey, nonce);
  const interrupts = watchInterrupts(ctx);
  // Not raced with Ctrl-C: the pairing's id comes with the answer, and only with it can it be revoked.
  const created = await createPairing(
    ctx,
    { label, commitment: toBase64(commitment) },
    proof.proof,
    api,
  ).then(
    (result) => result.data,
    (error: unknown) => {
      interrupts.release();
      throw error;
    },
  );
  const deadline = ctx.clock.now() + timeoutMs;
  const timedOut = (): LatchkeyError =>
    new LatchkeyError("LK_PAIRING_FAILED", {
      message: `The other machine did not finish its part within --timeout ${options.timeout ?? DEFAULT_PAIRING_TIMEOUT}.`,
      hint: "Run `latchkey pair` again and, within the time, `latchkey env pair CODE` on the machine that has your vaults.",
      details: { pairingId: created.pairingId },
    });

  const c = palette(ctx.env, ctx.stderr);

  const received = await revokingOnFailure(ctx, created, api, interrupts, async () => {
    if (interrupts.signal.aborted) throw interrupted();
    const code = normalizePairingCode(created.code);
    if (code === null) {
      throw new LatchkeyError("LK_SERVER_ERROR", {
        message: `${proof.server} answered the new pairing with a code that is not a pairing code; it was revoked.`,
        details: { server: proof.server },
      });
    }
    printCode(ctx, code, label, proof.server);
    const joined = await waitForPairing(ctx, {
      pairingId: created.pairingId,
      waiting: ["pending"],
      until: ["joined"],
      message: "Waiting for the other machine to join",
      deadline,
      timedOut,
      interrupts,
      options: api,
    });
    if (joined.approverKey === null) throw pairingEnded(joined.status);
    const approverKey = fromBase64(joined.approverKey);
    const revealed = await unlessInterrupted(
      revealPairing(
        ctx,
        created.pairingId,
        { publicKey: toBase64(keyPair.publicKey), nonce: toBase64(nonce) },
        api,
      ),
      interrupts.signal,
    );
    checkRevealed(revealed, keyPair.publicKey, approverKey, label);
    const digits = await pairingComparisonValue({
      code,
      newDeviceKey: keyPair.publicKey,
      approverKey,
      nonce,
    });
    printStatus(
      ctx,
      `\nThe other machine joined. Check that it shows the same number:\n\n    ${c.bold(formatComparisonValue(digits))}\n\n` +
        `and this machine's key fingerprint: ${await pairingKeyFingerprint(keyPair.publicKey)}\n` +
        "If they differ, answer no there: someone may be relaying the connection.\n",
    );
    await waitForPairing(ctx, {
      pairingId: created.pairingId,
      waiting: ["revealed"],
      until: ["approved"],
      message: "Waiting for the approval on the other machine",
      deadline,
      timedOut,
      interrupts,
      options: api,
    });
    // Not raced with Ctrl-C: once the server hands the key over it deletes it, so it must not be dropped here.
    const consumed = await consumePairing(ctx, created.pairingId, api);
    return { sealedKey: fromBase64(consumed.sealedKey), label: revealed.label, code, approverKey };
  });
  // Consumed: nothing is left to revoke, and from here Ctrl-C is Node's again (adoption survives being stopped
  // at any point, and `latchkey env rotate-key` finishes it).
  const keys = await openPairingKey(
    keyPair,
    {
      label: received.label,
      code: received.code,
      newDeviceKey: keyPair.publicKey,
      approverKey: received.approverKey,
    },
    received.sealedKey,
  ).catch((error: unknown) => {
    throw new LatchkeyError("LK_PAIRING_FAILED", {
      message: "The sealed key the server handed over does not open with this pairing's keys.",
      hint: relayWarning,
      cause: error,
    });
  });
  const adoption = await adoptWrappingKey(ctx, keys.wrappingKey, { verbose: api.verbose ?? 0 });
  const sharingKey: SharingKeyAdoption =
    keys.sharingKey === null
      ? { how: "none" }
      : await adoptSharingKey(ctx, keys.sharingKey, api).catch((error: unknown) => {
          // The wrapping key is this machine's now, whatever happens to the sharing key: say so before the error.
          printStatus(
            ctx,
            "This machine adopted the wrapping key, but not the sharing key your other machine sent with it.",
          );
          throw error;
        });
  return { pairingId: created.pairingId, label, server: proof.server, adoption, sharingKey };
}

function printCode(ctx: Context, code: string, label: string, server: string): void {
  const c = palette(ctx.env, ctx.stderr);
  printStatus(
    ctx,
    `\nPairing code: ${c.bold(code)}   (for ${JSON.stringify(label)}; valid ${PAIRING_TTL_SECONDS / 60} minutes)\n\n` +
      `On the machine that has your vaults, signed in to ${server} as you, run:\n\n` +
      `    ${c.bold(`latchkey env pair ${code}`)}\n`,
  );
}

/** The view the reveal answered must be this pairing as N made it, with the approver key N saw join. */
function checkRevealed(view: PairingView, ownKey: Uint8Array, approverKey: Uint8Array, label: string): void {
  if (view.status !== "revealed") throw pairingEnded(view.status);
  const same = (a: string | null, b: Uint8Array): boolean =>
    a !== null && constantTimeEqual(fromBase64(a), b);
  if (!same(view.newDeviceKey, ownKey) || !same(view.approverKey, approverKey) || view.label !== label) {
    throw new LatchkeyError("LK_PAIRING_FAILED", {
      message: "The server's answer to the reveal names other keys or another label than this pairing's.",
      hint: relayWarning,
    });
  }
}

function codeUsage(): LatchkeyError {
  return new LatchkeyError("LK_USAGE", {
    message:
      "That is not a pairing code: a code is 6 characters of 2-9 and A-Z without I, L and O (spaces and dashes are ignored).",
    hint: "Copy the code `latchkey pair` shows on the new machine: `latchkey env pair CODE`.",
  });
}

function nothingToShare(why: string): LatchkeyError {
  return new LatchkeyError("LK_PAIRING_FAILED", {
    message: why,
    hint: "Run `latchkey env pair CODE` on the machine that pushed your vaults (`latchkey env status` shows them).",
  });
}

/**
 * Refuses to pair while this machine is half way to another wrapping key (an unfinished `env rotate-key`, or an
 * adoption that stopped): the key to `share` is on its way out, and a key to `adopt` would be refused.
 */
async function refuseDuringRotation(ctx: Context, purpose: "share" | "adopt"): Promise<void> {
  const { keystore } = await ctx.keystore(WRAPPING_KEY_ACCOUNT);
  if ((await readPendingWrappingKey(keystore)) === null) return;
  throw new LatchkeyError("LK_PAIRING_FAILED", {
    message:
      purpose === "share"
        ? "This machine is in the middle of replacing its wrapping key (an unfinished `latchkey env rotate-key`): the key it would send is on its way out."
        : "This machine is in the middle of replacing its wrapping key (an unfinished `latchkey env rotate-key` or an earlier pairing that stopped halfway), so it cannot take another one now.",
    hint: "Run `latchkey env rotate-key` to finish that first, then pair again.",
  });
}

/**
 * Refuses to pair while this machine is half way to another sharing key (an unfinished `env rotate-sharing-key`):
 * the key to `share` is on its way out, and a key to `adopt` would be replaced when the rotation finishes.
 */
async function refuseDuringSharingKeyRotation(ctx: Context, purpose: "share" | "adopt"): Promise<void> {
  const { keystore } = await ctx.keystore(PENDING_SHARING_KEY_ACCOUNT);
  if ((await keystore.get(PENDING_SHARING_KEY_ACCOUNT)) === null) return;
  throw new LatchkeyError("LK_PAIRING_FAILED", {
    message:
      purpose === "share"
        ? "This machine is in the middle of replacing your account's sharing key (an unfinished `latchkey env rotate-sharing-key`): the key it would send is on its way out."
        : "This machine is in the middle of replacing your account's sharing key (an unfinished `latchkey env rotate-sharing-key`), so it cannot take the one your other machine would send.",
    hint: "Run `latchkey env rotate-sharing-key` to finish that first, then pair again.",
  });
}

/**
 * This machine's keys, to be sent: the wrapping key, and the account's sharing key when this machine has one.
 * Refused while there is no wrapping key or either rotation is half done.
 */
async function keysToShare(ctx: Context): Promise<PairingKeys> {
  await refuseDuringRotation(ctx, "share");
  await refuseDuringSharingKeyRotation(ctx, "share");
  const { keystore } = await ctx.keystore(WRAPPING_KEY_ACCOUNT);
  const wrappingKey = await readWrappingKey(keystore);
  if (wrappingKey === null) {
    throw nothingToShare(
      "This machine has no wrapping key yet (it has never opened a vault), so it has nothing to share.",
    );
  }
  const sharing = await readSharingKey((await ctx.keystore(SHARING_KEY_ACCOUNT)).keystore);
  return { wrappingKey, sharingKey: sharing?.privateKey ?? null };
}

/**
 * `latchkey env pair CODE`, on the machine that has the wrapping key: joins the pairing with an ephemeral P-256
 * key, waits for the new machine to reveal its key, checks it against the commitment made before this machine
 * joined (a mismatch is a relay: revoked, nothing sent), shows the new machine's label, key fingerprint and the
 * 6 digits, asks (only on a terminal; `--yes` otherwise), then seals this machine's wrapping key, and the
 * account's sharing key when this machine has one, to the new machine's key and approves. A "no" or Ctrl-C
 * revokes.
 */
export async function approvePairing(ctx: Context, options: ApprovePairOptions): Promise<ApprovePairOutcome> {
  const code = normalizePairingCode(options.code);
  if (code === null) throw codeUsage();
  const terminal = ctx.stdin.isTTY && ctx.stderr.isTTY;
  if (!terminal && !options.yes) {
    throw new LatchkeyError("LK_NOT_INTERACTIVE", {
      message:
        "Approving a pairing sends this machine's wrapping key to another device, so it asks first, and there is no terminal to ask on (stdin or stderr is not one).",
      hint: "Run it in a terminal and compare the 6 digits both machines show. --yes approves without that comparison, which is what stops a server or relay in the middle: use it only with a server and network you trust.",
    });
  }
  // Before any request: a machine without a key to share has no business joining.
  const { sharingKey: hasSharingKey } = await keysToShare(ctx);
  const what = hasSharingKey === null ? "wrapping key" : "wrapping key and sharing key";
  const base = apiOptions(options);

  const keyPair = await generatePairingKeyPair();
  const interrupts = watchInterrupts(ctx);
  // Not raced with Ctrl-C: once joined, the pairing is revoked below, which needs the join's answer.
  const joined = await joinPairing(ctx, { code, publicKey: toBase64(keyPair.publicKey) }, base).catch(
    (error: unknown) => {
      interrupts.release();
      throw error;
    },
  );
  const api: ApiOptions = { ...base, server: joined.server };
  const pairing = joined.data;
  // The commitment as it stood when this machine joined: the new machine's key must match it, whatever the
  // server says later.
  const commitment = fromBase64(pairing.commitment);
  const c = palette(ctx.env, ctx.stderr);

  const sent = await revokingOnFailure(ctx, pairing, api, interrupts, async () => {
    if (interrupts.signal.aborted) throw interrupted();
    if (
      pairing.status !== "joined" ||
      pairing.approverKey === null ||
      !constantTimeEqual(fromBase64(pairing.approverKey), keyPair.publicKey)
    ) {
      throw new LatchkeyError("LK_PAIRING_FAILED", {
        message: "The server's answer to the join does not carry this machine's key.",
        hint: relayWarning,
      });
    }
    const revealed = await waitForPairing(ctx, {
      pairingId: pairing.pairingId,
      waiting: ["joined"],
      until: ["revealed"],
      message: `Joined the pairing of ${JSON.stringify(pairing.label)}; waiting for the new machine`,
      // The server expires the pairing at its TTL; this bound only stops a server that never does.
      deadline: ctx.clock.now() + (PAIRING_TTL_SECONDS + 60) * 1000,
      timedOut: () => pairingEnded("expired"),
      interrupts,
      options: api,
    });
    if (revealed.newDeviceKey === null || revealed.nonce === null) throw pairingEnded(revealed.status);
    const newDeviceKey = fromBase64(revealed.newDeviceKey);
    const nonce = fromBase64(revealed.nonce);
    const sameApprover =
      revealed.approverKey !== null && constantTimeEqual(fromBase64(revealed.approverKey), keyPair.publicKey);
    if (
      !sameApprover ||
      revealed.label !== pairing.label ||
      !(await pairingCommitmentMatches(commitment, newDeviceKey, nonce))
    ) {
      throw new LatchkeyError("LK_PAIRING_FAILED", {
        message:
          "The new machine's key does not match what it committed to before this machine joined (or the server changed the pairing since): the pairing was stopped and nothing was sent.",
        hint: relayWarning,
      });
    }
    const digits = formatComparisonValue(
      await pairingComparisonValue({ code, newDeviceKey, approverKey: keyPair.publicKey, nonce }),
    );
    const fingerprint = await pairingKeyFingerprint(newDeviceKey);
    printStatus(
      ctx,
      `\nNew machine:  ${JSON.stringify(revealed.label)}\nIts key:      ${fingerprint}\n` +
        `Number:       ${c.bold(digits)}\n\n` +
        "Approve only if you started this pairing yourself and the new machine shows the same number.\n",
    );
    if (!options.yes) {
      const yes = await unlessInterrupted(
        ctx.prompts.confirm(`Send this machine's ${what} to ${JSON.stringify(revealed.label)}?`, false),
        interrupts.signal,
      );
      if (!yes) {
        throw new LatchkeyError("LK_CANCELLED", {
          message: "Not approved: nothing was sent.",
          hint: "Run `latchkey pair` on the new machine again when you mean to pair it.",
        });
      }
    } else {
      printStatus(
        ctx,
        "Approved without asking (--yes): nobody compared the numbers, the check that stops a relay in the middle.\n",
      );
    }
    const home = ctx.paths.home;
    await ensurePrivateDir(home);
    // Under the lock rotate-key holds, so the wrapping key sent is the one this machine keeps: no rotation can
    // start between reading it and the approval. The sharing key's lock keeps a promotion from replacing that key
    // meanwhile; one that goes stale all the same (a rotation uploaded from here right then) is caught by the new
    // machine, which takes a received key over its own only when the server has it.
    const sentSharingKey = await withFileLock(join(home, WRAPPING_KEY_ACCOUNT), () =>
      underSharingKeyLock(ctx, async () => {
        const keys = await keysToShare(ctx);
        const sealed = await sealPairingKey(
          keyPair,
          { label: revealed.label, code, newDeviceKey, approverKey: keyPair.publicKey },
          keys,
        );
        const approved = await approvePairingRequest(
          ctx,
          pairing.pairingId,
          { sealedKey: toBase64(sealed) },
          api,
        );
        if (approved.status !== "approved") throw pairingEnded(approved.status);
        return keys.sharingKey !== null;
      }),
    );
    return { label: revealed.label, fingerprint, sharingKey: sentSharingKey };
  });
  // Approved: a failure from here on must not revoke what the new machine is about to take.
  const vaults = (await listSyncEntries(ctx.paths.home))
    .filter((e) => isPersonalEntry(e) && e.server === joined.server && e.userId === joined.userId)
    .map((e) => e.vaultId);
  return { pairingId: pairing.pairingId, server: joined.server, vaults, ...sent };
}
