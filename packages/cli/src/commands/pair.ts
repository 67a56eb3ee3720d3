import { LatchkeyError } from "@latchkey/core";
import type { Context } from "../context.js";
import { printData, printJson, printStatus } from "../output/output.js";
import type { ApiOptions } from "../server/api.js";
import { shortFingerprint } from "../sharing/sharing-key.js";
import {
  approvePairing,
  pairNewMachine,
  type ApprovePairOutcome,
  type PairOutcome,
  type PairServerOptions,
} from "../sync/pair.js";
import { formatPairingList, listPairings, revokeAllPairings } from "../sync/pairing.js";

/** What `latchkey pair` was asked to do, as given. */
export interface PairCommandOptions extends PairServerOptions {
  label?: string;
  timeout?: string;
  list: boolean;
  revokeAll: boolean;
  json: boolean;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

function apiOptions(options: PairServerOptions): ApiOptions {
  return {
    verbose: options.verbose ?? 0,
    ...(options.server === undefined ? {} : { server: options.server }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
  };
}

/** What `latchkey pair` says of the sharing key it received; null when none came. */
function sharingKeyLine({ sharingKey, server }: PairOutcome): string | null {
  if (sharingKey.how === "none") return null;
  const key = `${shortFingerprint(sharingKey.fingerprint)}…`;
  switch (sharingKey.how) {
    case "stored":
    case "replaced":
      return `It holds your account's sharing key now (${key}), so it opens the organisation vaults shared with you.`;
    case "unchanged":
      return `It already held your account's sharing key (${key}).`;
    case "kept":
      return `It kept its own sharing key (${key}), the one your account has on ${server}; the other machine's was not stored.`;
    case "ignored":
      return `Neither the sharing key your other machine sent nor this machine's own (${key}) is the one registered for your account on ${server}; it kept its own.`;
  }
}

/** The lines `latchkey pair` ends with. */
export function pairSummary(outcome: PairOutcome): string {
  const { adoption } = outcome;
  const lines = [
    adoption.how === "unchanged"
      ? "Already paired: this machine had that wrapping key; nothing changed."
      : `Paired: this machine now holds the wrapping key of your other machine, so it opens the vaults that machine pushed to ${outcome.server}.`,
  ];
  if (adoption.how === "adopted") {
    const copies = adoption.serverUpdated.length;
    lines.push(
      `This machine's own ${plural(adoption.rewrapped.length, "vault key")} ${adoption.rewrapped.length === 1 ? "was" : "were"} re-wrapped under it` +
        (copies > 0 ? `, and ${copies} server ${copies === 1 ? "copy" : "copies"} updated.` : "."),
    );
  }
  if (adoption.serverUnopened.length > 0)
    lines.push(
      `Server copies no key of this machine opens, left as they are (held by the wrapping key of a machine other than the one you paired with): ${adoption.serverUnopened.join(", ")}.`,
    );
  if (adoption.unreadable.length > 0)
    lines.push(`Left as they were (no key of this machine opens them): ${adoption.unreadable.join(", ")}.`);
  const sharing = sharingKeyLine(outcome);
  if (sharing !== null) lines.push(sharing);
  lines.push("Run `latchkey env pull` in a project to fetch its vault.");
  return lines.join("\n");
}

/** The lines `latchkey env pair` ends with. */
export function approveSummary(outcome: ApprovePairOutcome): string {
  const what =
    outcome.vaults.length === 0
      ? "the vaults this machine pushes"
      : `${plural(outcome.vaults.length, "vault")} this machine synced with ${outcome.server}`;
  return (
    `Approved: ${JSON.stringify(outcome.label)} receives this machine's ${outcome.sharingKey ? "wrapping key and sharing key" : "wrapping key"} once and can then pull ${what}` +
    `${outcome.sharingKey ? ", and the organisation vaults shared with you" : ""}.\n` +
    "It stays paired until `latchkey env rotate-key` replaces the key on either machine."
  );
}

/** `latchkey pair`: pairs this machine, or with --list / --revoke-all looks after the account's pairings. */
export async function pairMachine(ctx: Context, options: PairCommandOptions): Promise<number> {
  const chosen = [...(options.list ? ["--list"] : []), ...(options.revokeAll ? ["--revoke-all"] : [])];
  const pairing = [
    ...(options.label === undefined ? [] : ["--label"]),
    ...(options.timeout === undefined ? [] : ["--timeout"]),
  ];
  if (chosen.length > 1 || (chosen.length === 1 && pairing.length > 0)) {
    throw new LatchkeyError("LK_USAGE", {
      message: `${[...chosen, ...pairing].join(" and ")} cannot be used together.`,
      hint: "`latchkey pair` pairs this machine (--label, --timeout); --list and --revoke-all each do only that.",
    });
  }
  if (options.list) {
    const { data } = await listPairings(ctx, apiOptions(options));
    if (options.json) printJson(ctx, data);
    else printData(ctx, formatPairingList(data.pairings));
    return 0;
  }
  if (options.revokeAll) {
    const { data } = await revokeAllPairings(ctx, apiOptions(options));
    if (options.json) printJson(ctx, data);
    else printStatus(ctx, `Revoked ${plural(data.revoked, "unfinished pairing")}.`);
    return 0;
  }
  const outcome = await pairNewMachine(ctx, {
    ...options,
    ...(options.label === undefined ? {} : { label: options.label }),
    ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
  });
  printStatus(ctx, pairSummary(outcome));
  if (options.json) printJson(ctx, outcome);
  return 0;
}

/** `latchkey env pair CODE`. */
export async function envPair(
  ctx: Context,
  options: PairServerOptions & { code: string; yes: boolean; json: boolean },
): Promise<number> {
  const outcome = await approvePairing(ctx, options);
  printStatus(ctx, approveSummary(outcome));
  if (options.json) printJson(ctx, outcome);
  return 0;
}
