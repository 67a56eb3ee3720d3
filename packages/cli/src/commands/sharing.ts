import type { Context } from "../context.js";
import { printStatus } from "../output/output.js";
import type { ApiOptions } from "../server/api.js";
import { rotateSharingKey } from "../sharing/rotate.js";
import { shortFingerprint } from "../sharing/sharing-key.js";

/** `env rotate-sharing-key`. */
export async function envRotateSharingKey(ctx: Context, options: ApiOptions): Promise<number> {
  const outcome = await rotateSharingKey(ctx, options);
  if (outcome.kind === "recovered") {
    printStatus(
      ctx,
      `Finished the interrupted rotation: ${outcome.server} already had the new sharing key (${shortFingerprint(outcome.fingerprint)}…), which this machine now uses.`,
    );
    return 0;
  }
  const dropped =
    outcome.orgs.length === 0
      ? "No organisation vault was shared with the old key."
      : `${outcome.wrappedKeysDeleted} vault key${outcome.wrappedKeysDeleted === 1 ? "" : "s"} wrapped for the old key ${outcome.wrappedKeysDeleted === 1 ? "was" : "were"} dropped in ${outcome.orgs.map((o) => o.slug).join(", ")}: ask a maintainer of each to run \`latchkey env share --org SLUG\` in those vaults.`;
  printStatus(
    ctx,
    `Replaced your sharing key on ${outcome.server}: it is now ${shortFingerprint(outcome.fingerprint)}…. ${dropped}`,
  );
  return 0;
}
