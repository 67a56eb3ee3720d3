// What `env ci enable`, `env ci show` and `env ci disable` print (ci/policy.ts does the work).
import type { Context } from "../context.js";
import { copyName } from "../ci/escrow.js";
import {
  describePolicy,
  disableCi,
  enableCi,
  showCi,
  type CiEnableOptions,
  type CiShowOptions,
  type CiTargetOptions,
} from "../ci/policy.js";
import { printData, printJson, printStatus } from "../output/output.js";
import { orgFlag } from "../sync/project.js";

/** `--json`, beside the copy and server a ci command works with. */
export interface CiCommandOptions {
  json: boolean;
}

/** `env ci enable`. */
export async function envCiEnable(
  ctx: Context,
  options: CiEnableOptions & CiCommandOptions,
): Promise<number> {
  const { json, ...enable } = options;
  const outcome = await enableCi(ctx, enable);
  if (json) {
    printJson(ctx, outcome);
    return 0;
  }
  const org = outcome.org ?? undefined;
  const provider = outcome.policy.provider;
  printStatus(
    ctx,
    `CI pulls enabled for ${copyName(outcome.vaultId, org)} on ${outcome.server}; the escrow opens its version ${outcome.escrowVersion}.\n` +
      `Next: \`latchkey setup ci --oidc --provider ${provider}\` prints what the ${provider === "github" ? "workflow needs (permissions: id-token: write)" : "job needs (an id_tokens: block)"} to run \`latchkey run --oidc${orgFlag(org)} -- …\`.`,
  );
  return 0;
}

/** `env ci show`. */
export async function envCiShow(ctx: Context, options: CiShowOptions & CiCommandOptions): Promise<number> {
  const { json, ...target } = options;
  const outcome = await showCi(ctx, target);
  if (json) {
    printJson(ctx, outcome);
    return 0;
  }
  printData(
    ctx,
    [
      `CI pulls of ${copyName(outcome.vaultId, outcome.org ?? undefined)} on ${outcome.server}:`,
      ...describePolicy(outcome.policy).map((line) => `  ${line}`),
      `  escrow:  opens version ${outcome.escrowVersion}; escrow key ${outcome.escrowKeyFingerprint}`,
      `  enabled:  ${outcome.enabledAt} by ${outcome.enabledBy ?? "an account that no longer exists"}`,
      ...(outcome.acceptedEscrowKey === undefined
        ? []
        : [
            `Accepted: pushes from this machine may escrow the key of this copy for escrow key ${outcome.acceptedEscrowKey}, so the server can decrypt it (\`latchkey env ci disable${orgFlag(outcome.org ?? undefined)}\` turns CI pulls off).`,
          ]),
    ].join("\n"),
  );
  return 0;
}

/** `env ci disable`. */
export async function envCiDisable(
  ctx: Context,
  options: CiTargetOptions & CiCommandOptions,
): Promise<number> {
  const { json, ...target } = options;
  const outcome = await disableCi(ctx, target);
  if (json) {
    printJson(ctx, outcome);
    return 0;
  }
  const org = outcome.org ?? undefined;
  const what = copyName(outcome.vaultId, org);
  printStatus(
    ctx,
    outcome.disabled
      ? `Disabled CI pulls of ${what} on ${outcome.server}: its policy and its escrowed key are deleted there, and CI access tokens already handed out for it stop working. No CI job can pull it until \`latchkey env ci enable${orgFlag(org)}\` again.`
      : `CI pulls were not enabled for ${what} on ${outcome.server}; nothing was deleted.`,
  );
  return 0;
}
