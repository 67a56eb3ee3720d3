import type { Context } from "../context.js";
import { printData, printJson, printStatus } from "../output/output.js";
import { fetchVaultLog } from "../sync/log.js";
import { PAIR_HINT_STEPS } from "../sync/not-paired.js";
import { describeDuration } from "../sync/offline.js";
import { pullVault, type PullOptions } from "../sync/pull.js";
import { pushVault, shareVault, type PushOptions, type ShareOutcome } from "../sync/push.js";
import type { CopyChoice } from "../sync/project.js";
import { rotateWrappingKey } from "../sync/rotate.js";
import { vaultStatus, type ServerView, type VaultStatus } from "../sync/status.js";

/** Server selection shared by the sync commands. */
export interface SyncCommandOptions {
  profile?: string;
  server?: string;
  verbose: number;
  json: boolean;
}

/** The copy a command works on: `--org SLUG` or `--personal` (push, pull, log, share). */
function choice(options: CopyChoice): CopyChoice {
  return {
    ...(options.org === undefined ? {} : { org: options.org }),
    ...(options.personal === true ? { personal: true } : {}),
  };
}

/** How messages name a copy: `vault ID`, or `organisation S's copy of vault ID`. */
const copyName = (vaultId: string, org: string | undefined) =>
  org === undefined ? `vault ${vaultId}` : `organisation ${org}'s copy of vault ${vaultId}`;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `env push`. */
export async function envPush(
  ctx: Context,
  options: SyncCommandOptions & CopyChoice & { force?: boolean },
): Promise<number> {
  const pushOptions: PushOptions = {
    verbose: options.verbose,
    force: options.force === true,
    ...choice(options),
  };
  if (options.profile !== undefined) pushOptions.profile = options.profile;
  if (options.server !== undefined) pushOptions.server = options.server;
  const outcome = await pushVault(ctx, pushOptions);
  if (options.json) printJson(ctx, outcome);
  else if (!outcome.pushed)
    printStatus(
      ctx,
      `Nothing to push: ${outcome.name} is as it was at version ${outcome.version} on ${outcome.server}${outcome.org === undefined ? "" : ` (organisation ${outcome.org})`}. (--force pushes a new version anyway.)`,
    );
  else
    printStatus(
      ctx,
      `Pushed ${outcome.name} (${plural(outcome.environments, "environment")}) to ${outcome.org === undefined ? "" : `organisation ${outcome.org}'s copy on `}${outcome.server} as version ${outcome.version}.`,
    );
  return 0;
}

/** `env pull`. */
export async function envPull(
  ctx: Context,
  options: SyncCommandOptions &
    CopyChoice & { environment: string; output?: string; trustNewMembers?: boolean },
): Promise<number> {
  const pullOptions: PullOptions = {
    environment: options.environment,
    verbose: options.verbose,
    ...choice(options),
    trustNewMembers: options.trustNewMembers === true,
  };
  if (options.output !== undefined) pullOptions.output = options.output;
  if (options.profile !== undefined) pullOptions.profile = options.profile;
  if (options.server !== undefined) pullOptions.server = options.server;
  const outcome = await pullVault(ctx, pullOptions);
  if (options.json) {
    printJson(ctx, outcome);
  } else {
    const what = outcome.restored
      ? "restored the local vault from it"
      : `${plural(outcome.fromServer.length, "key")} taken from the server, ${outcome.keptLocal.length} local change(s) kept`;
    printStatus(
      ctx,
      `Pulled version ${outcome.version} of ${copyName(outcome.vaultId, outcome.org)}: ${what}.`,
    );
    if (outcome.output !== undefined) printStatus(ctx, `Wrote ${outcome.output} (mode 0600).`);
  }
  // Names only, never values; on stderr even with --json so a script still sees them.
  if (outcome.conflicts.length > 0) {
    printStatus(
      ctx,
      `Changed both here and on the server, kept the local value: ${outcome.conflicts.join(", ")}. ` +
        `Check them, then \`latchkey env push${outcome.org === undefined ? "" : ` --org ${outcome.org}`}\` to make the server agree.`,
    );
  }
  return 0;
}

/** `env rotate-key`. */
export async function envRotateKey(ctx: Context, options: SyncCommandOptions): Promise<number> {
  const outcome = await rotateWrappingKey(ctx, { verbose: options.verbose });
  if (options.json) {
    printJson(ctx, outcome);
    return 0;
  }
  if (!outcome.rotated) {
    printStatus(ctx, "This machine has no wrapping key yet: there is nothing to rotate.");
    return 0;
  }
  printStatus(
    ctx,
    `${outcome.resumed ? "Finished the interrupted rotation" : "Rotated the wrapping key"}: ` +
      `${plural(outcome.rewrapped.length, "vault key")} re-wrapped, ${outcome.serverUpdated.length} server ${outcome.serverUpdated.length === 1 ? "copy" : "copies"} updated.`,
  );
  if (outcome.unreadable.length > 0)
    printStatus(
      ctx,
      `Left as they were (no key of this machine opens them): ${outcome.unreadable.join(", ")}.`,
    );
  if (outcome.serverUnopened.length > 0)
    printStatus(
      ctx,
      `Server copies left as they were (their key is wrapped for another machine's wrapping key, which this machine does not hold): ${outcome.serverUnopened.join(", ")}. ` +
        `To open them here, pair this machine: ${PAIR_HINT_STEPS}.`,
    );
  return 0;
}

/** `env share`. */
export async function envShare(
  ctx: Context,
  options: SyncCommandOptions & { org?: string; newKey?: boolean; trustNewMembers?: boolean },
): Promise<number> {
  const outcome: ShareOutcome = await shareVault(ctx, {
    verbose: options.verbose,
    newKey: options.newKey === true,
    trustNewMembers: options.trustNewMembers === true,
    ...(options.org === undefined ? {} : { org: options.org }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  });
  if (options.json) {
    printJson(ctx, outcome);
    return 0;
  }
  printStatus(
    ctx,
    `Shared ${outcome.name} (${plural(outcome.environments, "environment")}) with organisation ${outcome.org} on ${outcome.server} as version ${outcome.version}` +
      `${outcome.newKey ? ", sealed with a new vault key" : ""}: wrapped for ${plural(outcome.sharedWith.length, "member")} (${outcome.sharedWith.join(", ")}).`,
  );
  if (outcome.platforms !== undefined && outcome.platforms.resealed.length > 0)
    printStatus(
      ctx,
      `Platform credentials re-sealed with the new key: ${outcome.platforms.resealed.join(", ")}.`,
    );
  if (outcome.platforms !== undefined && outcome.platforms.dropped.length > 0)
    printStatus(
      ctx,
      `Platform connections disconnected, their credential no longer opened: ${outcome.platforms.dropped.join(", ")}; connect them again with \`latchkey env platforms connect\`.`,
    );
  if (outcome.waiting.length > 0)
    printStatus(
      ctx,
      `Waiting for a sharing key (not shared with yet): ${outcome.waiting.join(", ")}. Their first organisation command registers one; ` +
        `then run \`latchkey env share --org ${outcome.org}\` again.`,
    );
  return 0;
}

/** `env log`. */
export async function envLog(ctx: Context, options: SyncCommandOptions & CopyChoice): Promise<number> {
  const log = await fetchVaultLog(ctx, {
    ...choice(options),
    verbose: options.verbose,
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  });
  if (options.json) {
    printJson(ctx, {
      vaultId: log.vaultId,
      ...(log.org === undefined ? {} : { org: log.org }),
      entries: log.entries,
    });
  } else if (log.entries.length === 0) {
    printStatus(ctx, `No audit entries for ${copyName(log.vaultId, log.org)}.`);
  } else {
    printData(
      ctx,
      log.entries
        .map((e) =>
          [e.createdAt, e.action, e.version === null ? "-" : `v${e.version}`, e.actor?.email ?? "?"].join(
            "  ",
          ),
        )
        .join("\n"),
    );
  }
  return 0;
}

function describeServer(view: ServerView): string {
  switch (view.state) {
    case "synced":
      return `version ${view.version} at ${view.server}`;
    case "not-synced":
      return `no copy of this vault at ${view.server}`;
    case "not-signed-in":
      return view.server === null
        ? "not signed in (no server configured: `latchkey login --server URL`)"
        : `not signed in at ${view.server} (\`latchkey login\`)`;
    case "unreachable":
      return `unreachable (${view.server})`;
    case "not-asked":
      return view.reason === "offline" ? "not asked (--offline)" : "not asked (the vault id is not a UUID)";
    case "error":
      return `error ${view.code}: ${view.message}`;
  }
}

function describeStatus(status: VaultStatus, now: number): string {
  const { local } = status;
  const syncedAt = local.syncedAt === null ? null : Date.parse(local.syncedAt);
  const copy = local.present ? "" : "no local file; ";
  const synced =
    local.version === null
      ? "never pushed or pulled from this machine"
      : `version ${local.version}, last synced ${
          syncedAt === null
            ? "at a time not recorded"
            : `${local.syncedAt} (${describeDuration(Math.max(0, now - syncedAt))} ago)`
        } with ${local.server}`;
  const paired =
    status.paired === true
      ? "yes"
      : status.paired === false
        ? "no: the server's copy has its key wrapped for another machine"
        : status.server.state === "not-synced"
          ? "nothing to pair with (the server has no copy)"
          : "unknown (the server was not heard)";
  return [
    `vault ${status.vaultId}`,
    `  local:   ${copy}${synced}`,
    `  server:  ${describeServer(status.server)}`,
    `  paired:  ${paired}`,
  ].join("\n");
}

/** `env status`. */
export async function envStatus(
  ctx: Context,
  options: SyncCommandOptions & { all: boolean; offline: boolean },
): Promise<number> {
  const statuses = await vaultStatus(ctx, {
    all: options.all,
    offline: options.offline,
    verbose: options.verbose,
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.server === undefined ? {} : { server: options.server }),
  });
  if (options.json) printJson(ctx, { vaults: statuses });
  else if (statuses.length === 0) printStatus(ctx, "This machine has no vaults.");
  else printData(ctx, statuses.map((status) => describeStatus(status, ctx.clock.now())).join("\n\n"));
  return 0;
}
