// `latchkey env platforms …` (docs/platforms.md, "Commands"): the command lines and what they print;
// platforms/connections.ts does the work.
import { Option, type Command } from "commander";
import { PLATFORMS, VERCEL_TARGETS, type PlatformConnection } from "@latchkey/core";
import type { Context } from "../context.js";
import { copyName } from "../ci/escrow.js";
import { printData, printJson, printStatus } from "../output/output.js";
import {
  connectPlatform,
  disconnectPlatform,
  listConnections,
  pullPlatform,
  pushPlatform,
  type PlatformTargetOptions,
  type PushOutcome,
} from "../platforms/connections.js";
import { orgFlag } from "../sync/project.js";
import { copyOptions, withCopyOptions } from "./sync-command.js";
import { globalOptions, type RunState } from "./support.js";

interface Flags {
  server?: string;
  profile?: string;
  json?: boolean;
  org?: string;
  personal?: boolean;
}

interface ConnectFlags extends Flags {
  env: string;
  name?: string;
  project?: string;
  team?: string;
  target: string[];
  type?: string;
  app?: string;
  repo?: string;
  repoEnvironment?: string;
  railwayEnvironment?: string;
  service?: string;
  tokenType?: string;
  application?: string;
  region?: string;
  path?: string;
  secretId?: string;
  kmsKey?: string;
  url?: string;
  baseUrl?: string;
  credentialStdin?: boolean;
  credentialFile?: string;
}

function withServerOptions(command: Command, json = true): Command {
  withCopyOptions(command)
    .option("--server <url>", "the Latchkey server (default: LATCHKEY_SERVER, else the profile's)")
    .option("--profile <name>", "the profile whose server session to use");
  if (json) command.option("--json", "print JSON");
  return command;
}

function targetOptions(command: Command, flags: Flags): PlatformTargetOptions {
  return {
    verbose: globalOptions(command).verbose,
    ...copyOptions(flags),
    ...(flags.server === undefined ? {} : { server: flags.server }),
    ...(flags.profile === undefined ? {} : { profile: flags.profile }),
  };
}

const repeatable = (value: string, previous: string[]) => [...previous, value];
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** A connection's target in words: where its pushes go. */
export function describeTarget(connection: Pick<PlatformConnection, "config">): string {
  const config = connection.config;
  switch (config.platform) {
    case "vercel":
      return `project ${config.projectId}${config.teamId === undefined ? "" : ` (team ${config.teamId})`}, ${config.target.join("+")}, ${config.type}`;
    case "fly":
      return `app ${config.app}`;
    case "railway":
      return `project ${config.projectId} environment ${config.environmentId}${config.serviceId === undefined ? " (shared variables)" : ` service ${config.serviceId}`}`;
    case "coolify":
      return `application ${config.applicationUuid}${config.baseUrl === undefined ? "" : ` on ${new URL(config.baseUrl).origin}`}`;
    case "aws-ssm":
      return `parameters ${config.path}* in ${config.region}`;
    case "aws-sm":
      return `secret ${config.secretId} in ${config.region}`;
    case "github-actions":
      return `${config.owner}/${config.repo}${config.environment === undefined ? "" : ` environment ${config.environment}`}`;
    case "generic":
      return new URL(config.url).origin;
  }
}

function lastPush(connection: PlatformConnection): string {
  const push = connection.lastPush;
  if (push === null) return "never pushed";
  const counts = `+${push.added} ~${push.changed} -${push.removed}`;
  return `${push.outcome} ${push.pushedAt} v${push.version} ${counts}${push.pushedBy === null ? "" : ` by ${push.pushedBy}`}${push.message === null ? "" : ` (${push.message})`}`;
}

function printPlan(ctx: Context, outcome: PushOutcome): void {
  const { plan } = outcome;
  const lines = [
    `Plan for ${outcome.name} (${outcome.platform}, environment ${outcome.environment}, version ${outcome.version} of ${copyName(outcome.vaultId, outcome.org ?? undefined)}):`,
    ...plan.added.map((n) => `  + ${n}`),
    ...plan.changed.map((n) => `  ~ ${n}`),
    ...plan.removed.map((n) => `  - ${n}`),
  ];
  if (plan.added.length + plan.changed.length + plan.removed.length === 0) lines.push("  (nothing to write)");
  if (!plan.listed)
    lines.push(
      `  ${outcome.platform} cannot list its names here: every name is written, and nothing is pruned.`,
    );
  if (outcome.notPushedLocal.length > 0)
    lines.push(
      `  Not included: ${outcome.notPushedLocal.join(", ")} changed on this machine and not pushed to the server (\`latchkey env push${orgFlag(outcome.org ?? undefined)}\` first).`,
    );
  printStatus(ctx, lines.join("\n"));
}

/** Adds `platforms connect|list|disconnect|status|push|pull` to `latchkey env`. */
export function addPlatformCommands(env: Command, ctx: Context, state: RunState): void {
  const platforms = env
    .command("platforms")
    .description(
      "push a vault environment to the platforms that run the code (Vercel, Fly.io, GitHub Actions, …)",
    )
    .addHelpText(
      "after",
      "\nA connection names a platform target and the vault environment it receives. It lives on the server with the\n" +
        "platform's token sealed with the vault's key: the server can read neither the secrets nor the token. Pushes\n" +
        "and pulls run on this machine. See docs/platforms.md.",
    );

  withServerOptions(
    platforms
      .command("connect")
      .description(
        "connect a platform target to a vault environment (the token is asked, never on the command line)",
      )
      .argument("<platform>", `one of ${PLATFORMS.join(", ")}`)
      .requiredOption("--env <environment>", "the vault environment the connection pushes")
      .option("--name <name>", "the connection's name (default: PLATFORM-ENV)")
      .option("--project <id>", "vercel: the project id or name")
      .option("--team <id>", "vercel: the team id (absent for a personal account)")
      .addOption(
        new Option(
          "--target <target>",
          `vercel: a deployment target, repeatable (${VERCEL_TARGETS.join(", ")})`,
        )
          .argParser(repeatable)
          .default([] as string[], "production"),
      )
      .addOption(
        new Option("--type <type>", "vercel: encrypted (pull can read it back) or sensitive").choices([
          "encrypted",
          "sensitive",
        ]),
      )
      .option("--app <name>", "fly: the app")
      .option("--repo <owner/repo>", "github-actions: the repository")
      .option(
        "--repo-environment <name>",
        "github-actions: a deployment environment's secrets instead of the repository's",
      )
      .option("--railway-environment <id>", "railway: the environment id")
      .option("--service <id>", "railway: a service's variables instead of the environment's shared ones")
      .addOption(
        new Option("--token-type <type>", "railway: the kind of token (default account)").choices([
          "account",
          "team",
          "project",
        ]),
      )
      .option("--application <uuid>", "coolify: the application's uuid")
      .option("--region <region>", "aws-ssm, aws-sm: the AWS region, e.g. eu-west-1")
      .option("--path <prefix>", "aws-ssm: the parameter path, starting and ending with /")
      .option("--secret-id <name>", "aws-sm: the secret's name")
      .option("--kms-key <id>", "aws-ssm, aws-sm: a KMS key id, alias or ARN (default: the AWS managed key)")
      .option("--url <url>", "generic: the receiver's https URL")
      .option(
        "--base-url <url>",
        "the platform API's URL (a self-hosted or test endpoint); https, or http on loopback",
      )
      .option("--credential-stdin", "read the platform token from stdin")
      .option(
        "--credential-file <file>",
        "read the platform token from a file only you can read (mode 0600)",
      ),
    false,
  )
    .addHelpText(
      "after",
      "\nThe token comes from a masked prompt on a terminal, from stdin or from a private file; never from argv.\n" +
        "An organisation's copy (--org SLUG) needs the maintainer role and a pull of it on this machine.\n\n" +
        "Examples:\n" +
        "  latchkey env platforms connect vercel --env production --project prj_123 --team team_456\n" +
        "  latchkey env platforms connect fly --env production --app acme-web --credential-stdin < fly-token\n" +
        "  latchkey env platforms connect github-actions --env ci --repo acme/web --repo-environment production\n" +
        "  latchkey env platforms connect aws-ssm --env production --region eu-west-1 --path /acme/web/production/",
    )
    .action(async (platform: string, flags: ConnectFlags, command: Command) => {
      const outcome = await connectPlatform(ctx, {
        ...targetOptions(command, flags),
        platform,
        environment: flags.env,
        ...(flags.name === undefined ? {} : { name: flags.name }),
        targets: {
          project: flags.project,
          team: flags.team,
          target: flags.target,
          type: flags.type,
          app: flags.app,
          repo: flags.repo,
          repoEnvironment: flags.repoEnvironment,
          railwayEnvironment: flags.railwayEnvironment,
          service: flags.service,
          tokenType: flags.tokenType,
          application: flags.application,
          region: flags.region,
          path: flags.path,
          secretId: flags.secretId,
          kmsKey: flags.kmsKey,
          url: flags.url,
          baseUrl: flags.baseUrl,
        },
        ...(flags.credentialStdin === true ? { credentialStdin: true } : {}),
        ...(flags.credentialFile === undefined ? {} : { credentialFile: flags.credentialFile }),
      });
      const org = outcome.org ?? undefined;
      printStatus(
        ctx,
        `Connected ${outcome.connection.name}: environment ${outcome.connection.environment} of ${copyName(outcome.vaultId, org)} → ${outcome.connection.platform} ${describeTarget(outcome.connection)}. The token is sealed with the vault's key on ${outcome.server}.\n` +
          `Next: \`latchkey env platforms push ${outcome.connection.name}${orgFlag(org)} --dry-run\` shows what a push would write.`,
      );
      state.exitCode = 0;
    });

  withServerOptions(platforms.command("list").description("the copy's platform connections")).action(
    async (flags: Flags, command: Command) => {
      const listed = await listConnections(ctx, targetOptions(command, flags));
      if (flags.json === true) {
        printJson(ctx, {
          ...listed,
          connections: listed.connections.map(({ sealedCredential: _sealed, ...rest }) => rest),
        });
      } else if (listed.connections.length === 0) {
        printStatus(
          ctx,
          `${copyName(listed.vaultId, listed.org ?? undefined)} has no platform connections on ${listed.server}.`,
        );
      } else {
        printData(
          ctx,
          listed.connections
            .map(
              (c) =>
                `${c.name}\t${c.platform}\t${c.environment}\t${describeTarget(c)}\tcreated ${c.createdAt}${c.createdBy === null ? "" : ` by ${c.createdBy}`}`,
            )
            .join("\n"),
        );
      }
      state.exitCode = 0;
    },
  );

  withServerOptions(
    platforms
      .command("status")
      .description("each connection's last push: when, which version, counts, outcome"),
  ).action(async (flags: Flags, command: Command) => {
    const listed = await listConnections(ctx, targetOptions(command, flags));
    if (flags.json === true) {
      printJson(ctx, {
        vaultId: listed.vaultId,
        org: listed.org,
        server: listed.server,
        connections: listed.connections.map((c) => ({
          name: c.name,
          platform: c.platform,
          environment: c.environment,
          lastPush: c.lastPush,
        })),
      });
    } else if (listed.connections.length === 0) {
      printStatus(
        ctx,
        `${copyName(listed.vaultId, listed.org ?? undefined)} has no platform connections on ${listed.server}.`,
      );
    } else {
      printData(ctx, listed.connections.map((c) => `${c.name}\t${c.platform}\t${lastPush(c)}`).join("\n"));
    }
    state.exitCode = 0;
  });

  withServerOptions(
    platforms
      .command("disconnect")
      .description("delete a connection and its sealed token from the server")
      .argument("<name>", "the connection"),
    false,
  ).action(async (name: string, flags: Flags, command: Command) => {
    const outcome = await disconnectPlatform(ctx, { ...targetOptions(command, flags), name });
    printStatus(
      ctx,
      `Disconnected ${outcome.name} from ${copyName(outcome.vaultId, outcome.org ?? undefined)} on ${outcome.server}. The platform keeps what was pushed to it; revoke the token on the platform too if nobody else uses it.`,
    );
    state.exitCode = 0;
  });

  withServerOptions(
    platforms
      .command("push")
      .description(
        "push the connection's environment to its platform: plan, then apply, then record the status",
      )
      .argument("<name>", "the connection")
      .option("--dry-run", "show the plan (names only) and stop")
      .option("--prune", "also delete names the platform has and the vault's environment does not"),
  )
    .addHelpText(
      "after",
      "\nThe copy is pulled first (as `latchkey env pull`), and its server version is what is pushed. Without --prune\n" +
        "nothing is deleted on the platform. The plan and the recorded status hold names and counts, never values.",
    )
    .action(async (name: string, flags: Flags & { dryRun?: boolean; prune?: boolean }, command: Command) => {
      const outcome = await pushPlatform(ctx, {
        ...targetOptions(command, flags),
        name,
        dryRun: flags.dryRun === true,
        prune: flags.prune === true,
      });
      if (flags.json === true) printJson(ctx, outcome);
      else printPlan(ctx, outcome);
      const result = outcome.result;
      if (result === undefined) {
        if (flags.json !== true) printStatus(ctx, "Dry run: nothing was sent to the platform.");
        state.exitCode = 0;
        return;
      }
      if (flags.json !== true) {
        const lines = [
          `Pushed to ${outcome.name}: ${plural(result.written.length, "name")} written, ${plural(result.removed.length, "name")} removed.`,
        ];
        for (const failed of result.failed) lines.push(`  not written: ${failed.name} (${failed.reason})`);
        printStatus(ctx, lines.join("\n"));
      }
      state.exitCode = result.failed.length === 0 ? 0 : 1;
    });

  withServerOptions(
    platforms
      .command("pull")
      .description("import the platform's values into the connection's environment of the local vault")
      .argument("<name>", "the connection"),
  )
    .addHelpText(
      "after",
      "\nOnly where the platform returns values (Vercel's encrypted variables, Railway, Coolify, AWS SSM and Secrets\n" +
        "Manager); Fly.io, GitHub Actions and a generic receiver keep them write-only. A name whose value the platform\n" +
        "withholds (Railway's sealed, Coolify's shown once, Vercel's sensitive) is listed, not imported. The import is\n" +
        "local: `latchkey env push` shares it.",
    )
    .action(async (name: string, flags: Flags, command: Command) => {
      const outcome = await pullPlatform(ctx, { ...targetOptions(command, flags), name });
      if (flags.json === true) printJson(ctx, outcome);
      else
        printStatus(
          ctx,
          [
            `Imported from ${outcome.name} into environment ${outcome.environment}: ${plural(outcome.added.length, "new name")}, ${plural(outcome.changed.length, "changed value")}, ${outcome.unchanged} unchanged.`,
            ...outcome.added.map((n) => `  + ${n}`),
            ...outcome.changed.map((n) => `  ~ ${n}`),
            ...outcome.withheld.map(
              (n) => `  not imported: ${n} (${outcome.platform} does not return its value)`,
            ),
            `Run \`latchkey env push${orgFlag(outcome.org ?? undefined)}\` to share them.`,
          ].join("\n"),
        );
      state.exitCode = 0;
    });
}
