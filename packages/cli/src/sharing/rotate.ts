// `latchkey env rotate-sharing-key` (docs/teams.md, "Sharing keys"): replaces the account's sharing key with a new
// one made on this machine. The server then drops every organisation vault key wrapped for the old one, so the
// person is shown what they lose and must type ROTATE, and re-authenticates for this one action. Crash-safe by its
// order: the new key is stored as pending before it is sent, and becomes the sharing key only once the server has
// it; a rerun first asks whether a pending key already reached the server and, if so, only promotes it.
import {
  LatchkeyError,
  sharingKeyImpactResponseSchema,
  sharingKeyRotateResponseSchema,
  toBase64,
  type SharingKeyImpactOrg,
  type SharingKeyRotateRequest,
} from "@latchkey/core";
import type { Context } from "../context.js";
import { printStatus } from "../output/output.js";
import { callApi, type ApiOptions } from "../server/api.js";
import { mintStepUpProof } from "../server/step-up.js";
import {
  PENDING_SHARING_KEY_ACCOUNT,
  SHARING_KEY_API_PATH,
  askSharingKeyState,
  newSharingKey,
  promotePendingSharingKey,
  readSharingKey,
  recoverPendingSharingKey,
  shortFingerprint,
  storeSharingKey,
} from "./sharing-key.js";

/** The word the person types to confirm. */
export const ROTATE_CONFIRMATION = "ROTATE";

/** What a run of `env rotate-sharing-key` did. */
export type SharingKeyRotation =
  /** A previous run had uploaded its pending key; this one only made it the sharing key. */
  | { kind: "recovered"; server: string; fingerprint: string }
  | {
      kind: "rotated";
      server: string;
      fingerprint: string;
      /** The key replaced; null when the account had none. */
      previousFingerprint: string | null;
      /** The organisations whose vault keys for the old key were dropped, and their vaults. */
      orgs: SharingKeyImpactOrg[];
      wrappedKeysDeleted: number;
    };

/** The blast-radius warning: what the rotation takes away, shown before the typed confirmation. */
function describeImpact(orgs: readonly SharingKeyImpactOrg[]): string {
  if (orgs.length === 0) {
    return "No organisation has shared a vault with your current key, so no shared vault is affected.";
  }
  const lines = orgs.map(
    (org) =>
      `  ${org.slug}: ${org.vaults.map((v) => (v.name === v.vaultId ? v.vaultId : `${v.name} (${v.vaultId})`)).join(", ")}`,
  );
  return [
    "Every organisation vault key wrapped for your current sharing key is deleted. Until a maintainer shares",
    "them again (`latchkey env share --org SLUG` in the vault), you cannot pull these vaults:",
    ...lines,
    "Their owners and admins are told by e-mail, and see you as needing a share in `latchkey org members`.",
  ].join("\n");
}

/**
 * Runs `env rotate-sharing-key`:
 * 1. crash recovery: a pending key the server already has becomes the sharing key, and the run ends there;
 * 2. a terminal is required (LK_NOT_INTERACTIVE otherwise; there is no --yes);
 * 3. the blast-radius warning: the organisations and vaults whose keys for the current key the server will drop;
 * 4. the person types ROTATE; anything else is LK_CANCELLED with nothing changed;
 * 5. a `vault:public-key:rotate` step-up proof (password, and TOTP code when enrolled);
 * 6. the new key stored as pending (a pending key a stopped run left is reused: it never reached the server);
 * 7. the upload: the server replaces the key, drops the wrapped keys, audits and queues notices, in one transaction;
 * 8. promotion: the pending key becomes the sharing key, then its pending entry goes.
 */
export async function rotateSharingKey(ctx: Context, options: ApiOptions = {}): Promise<SharingKeyRotation> {
  const { keystore } = await ctx.keystore(PENDING_SHARING_KEY_ACCOUNT);
  const recovered = await recoverPendingSharingKey(ctx, keystore, options);
  if (recovered !== null) {
    return { kind: "recovered", server: recovered.server, fingerprint: recovered.key.fingerprint };
  }
  const text = ctx.prompts.text;
  if (!ctx.stdin.isTTY || !ctx.stderr.isTTY || text === undefined) {
    throw new LatchkeyError("LK_NOT_INTERACTIVE", {
      message:
        "Replacing your sharing key asks you to type ROTATE and your password, and this command has no terminal to ask on (stdin or stderr is not one).",
      hint: "Run `latchkey env rotate-sharing-key` in an interactive terminal. There is no --yes for it, by design.",
    });
  }

  const current = await readSharingKey(keystore);
  const state = await askSharingKeyState(ctx, current, options);
  const at: ApiOptions = { ...options, server: state.server };
  const impact = await callApi(
    ctx,
    { method: "GET", path: `${SHARING_KEY_API_PATH}/impact`, answer: sharingKeyImpactResponseSchema },
    at,
  );
  const registered =
    state.data.fingerprint === null
      ? `Your account has no sharing key on ${state.server} yet; this sets one.`
      : state.data.state === "matches"
        ? `This replaces your account's sharing key on ${state.server} (${shortFingerprint(state.data.fingerprint)}…, the one this machine holds) with a new one.`
        : `This replaces your account's sharing key on ${state.server} (${shortFingerprint(state.data.fingerprint)}…, which this machine does not hold: another machine's) with a new one made here; that machine's organisation operations are refused afterwards.`;
  printStatus(ctx, `${registered}\n${describeImpact(impact.data.orgs)}`);

  const typed = await text(`Type ${ROTATE_CONFIRMATION} to replace your sharing key`);
  if (typed !== ROTATE_CONFIRMATION) {
    throw new LatchkeyError("LK_CANCELLED", {
      message: `You did not type ${ROTATE_CONFIRMATION}, so the sharing key was not replaced; nothing was changed.`,
      hint: `Run \`latchkey env rotate-sharing-key\` again and type ${ROTATE_CONFIRMATION} (in capitals) if you mean it.`,
    });
  }

  const proof = await mintStepUpProof(ctx, "vault:public-key:rotate", at);
  let next = await readSharingKey(keystore, PENDING_SHARING_KEY_ACCOUNT);
  if (next === null) {
    next = await newSharingKey(ctx);
    await storeSharingKey(keystore, PENDING_SHARING_KEY_ACCOUNT, next);
    await ctx.afterRotateStep?.("sharing-key-pending-stored");
  }
  const body: SharingKeyRotateRequest = { publicKey: toBase64(next.publicKey) };
  let rotated;
  try {
    rotated = await callApi(
      ctx,
      {
        method: "POST",
        path: `${SHARING_KEY_API_PATH}/rotate`,
        body,
        answer: sharingKeyRotateResponseSchema,
        stepUpProof: proof.proof,
      },
      { ...at, server: proof.server },
    );
  } catch (error) {
    if (!(error instanceof LatchkeyError)) throw error;
    throw new LatchkeyError(error.code, {
      message: `${error.message} The new sharing key is kept as pending on this machine; running \`latchkey env rotate-sharing-key\` again finishes or retries the rotation.`,
      hint: error.hint,
      cause: error,
      ...(error.details === undefined ? {} : { details: error.details }),
    });
  }
  await ctx.afterRotateStep?.("sharing-key-uploaded");
  if (rotated.data.fingerprint !== next.fingerprint) {
    throw new LatchkeyError("LK_SERVER_ERROR", {
      message: `${rotated.server} answered the rotation to sharing key ${shortFingerprint(next.fingerprint)}… with another key; this machine kept its keys as they were.`,
      hint: "Check the server, then run `latchkey env rotate-sharing-key` again.",
      details: { server: rotated.server },
    });
  }
  await promotePendingSharingKey(ctx, keystore, next);
  return {
    kind: "rotated",
    server: rotated.server,
    fingerprint: next.fingerprint,
    previousFingerprint: rotated.data.previousFingerprint,
    orgs: rotated.data.orgs,
    wrappedKeysDeleted: rotated.data.wrappedKeysDeleted,
  };
}
