import { Argument, Command, Option } from "commander";
import { ORG_ROLES, type OrgRole } from "@latchkey/core";
import type { Context } from "../context.js";
import {
  orgAdd,
  orgCreate,
  orgDelete,
  orgList,
  orgMembersCommand,
  orgRemove,
  orgRotateKeys,
  orgSetRole,
  orgTrust,
  type OrgCommandOptions,
} from "./org.js";
import { globalOptions, type RunState } from "./support.js";

interface ServerFlags {
  server?: string;
  profile?: string;
  json?: boolean;
}

function withServerOptions(command: Command): Command {
  return command
    .option("--server <url>", "the Latchkey server (default: LATCHKEY_SERVER, else the profile's)")
    .option("--profile <name>", "the profile whose server session to use")
    .option("--json", "print JSON");
}

function orgOptions(command: Command, flags: ServerFlags): OrgCommandOptions {
  return {
    verbose: globalOptions(command).verbose,
    json: flags.json === true,
    ...(flags.server === undefined ? {} : { server: flags.server }),
    ...(flags.profile === undefined ? {} : { profile: flags.profile }),
  };
}

const roleArgument = (description: string) =>
  new Option("--role <role>", description).choices(ORG_ROLES).default("member" satisfies OrgRole);

const ROLES_HELP =
  "Roles, strongest first (each may do what the ones below it may):\n" +
  "  owner       everything: make, change and remove owners, delete the organisation\n" +
  "  admin       add and remove members, set roles up to admin\n" +
  "  maintainer  share vaults (`latchkey env share --org SLUG`), rotate their keys, read the audit logs\n" +
  "  member      pull and push the organisation's vaults, list its members";

const SHARING_HELP =
  "Every organisation command first makes sure your sharing key — the X25519 key organisations wrap vault keys\n" +
  "for — is registered: the first one registers this machine's, asking for your password on a terminal. A\n" +
  "machine whose key is not your registered one is refused (LK_SHARING_KEY_MISMATCH; see\n" +
  "`latchkey env rotate-sharing-key`).";

/** --trust-new-members, for every command that wraps a vault key for the members or opens one a member wrapped. */
export const TRUST_NEW_MEMBERS_HELP =
  "without a terminal, take whatever key the server sends for members this machine never saw, to wrap for or as the sharer of a key it opens (a changed key is refused all the same)";

/** What a command that wraps for the members checks first (org/pins.ts). */
export const TRUSTING_KEYS_HELP =
  "Members' sharing keys are pinned on this machine (org-keys.json) the first time it wraps for them. A key\n" +
  "that changed since is refused (LK_ORG_MEMBER_KEY_CHANGED): compare the fingerprint with the member by\n" +
  "another channel, then `latchkey org trust SLUG EMAIL FINGERPRINT`. A member never seen is shown with\n" +
  "their full fingerprint and asked about on a terminal; without one it is refused (LK_ORG_MEMBER_UNTRUSTED)\n" +
  "unless --trust-new-members, which takes the server's word for new members' keys.";

/** Builds `latchkey org …`. */
export function orgCommand(ctx: Context, state: RunState): Command {
  const org = new Command("org").description(
    "organisations: members with roles who share vaults, each vault key wrapped for every member's sharing key",
  );
  org.addHelpText(
    "after",
    `\n${ROLES_HELP}\n\n${SHARING_HELP}\n\n` +
      "A vault is shared with `latchkey env share --org SLUG` in its project; members then use `latchkey env\n" +
      'pull --org SLUG` and `latchkey env push --org SLUG` (or set "org": "SLUG" in latchkey.json). See docs/teams.md.',
  );

  withServerOptions(
    org
      .command("create")
      .description("create an organisation, with you as its owner")
      .argument("<slug>", "1 to 40 lower-case letters, digits and inner hyphens, unique on the server")
      .option("--name <name>", "its display name (default: the slug)"),
  )
    .addHelpText("after", "\nExamples:\n  latchkey org create acme --name 'Acme Corp'")
    .action(async (slug: string, flags: ServerFlags & { name?: string }, command: Command) => {
      state.exitCode = await orgCreate(ctx, slug, {
        ...orgOptions(command, flags),
        ...(flags.name === undefined ? {} : { name: flags.name }),
      });
    });

  withServerOptions(org.command("list").description("your organisations and your role in each"))
    .addHelpText("after", "\nExamples:\n  latchkey org list\n  latchkey org list --json")
    .action(async (flags: ServerFlags, command: Command) => {
      state.exitCode = await orgList(ctx, orgOptions(command, flags));
    });

  withServerOptions(
    org
      .command("members")
      .description("members with role, email, sharing key and the vaults they still need a share of")
      .argument("<slug>"),
  )
    .addHelpText(
      "after",
      '\nA member "waiting for a sharing key" has not run an organisation command yet; one who "needs share" has\n' +
        "a sharing key but some vault's key is missing or wrapped for a key they no longer have: a maintainer\n" +
        "runs `latchkey env share --org SLUG` in that vault's project.\n" +
        "Each key's full fingerprint is shown with its state on this machine: pinned (shared with before), new\n" +
        "(never seen here: the next share asks), or CHANGED (the next share refuses it until `latchkey org\n" +
        "trust`). The first line is this machine's own sharing key: the fingerprint you read to a maintainer.\n\n" +
        "Examples:\n  latchkey org members acme\n  latchkey org members acme --json",
    )
    .action(async (slug: string, flags: ServerFlags, command: Command) => {
      state.exitCode = await orgMembersCommand(ctx, slug, orgOptions(command, flags));
    });

  withServerOptions(
    org
      .command("add")
      .description("add an existing account to the organisation (admin; owner to add an owner)")
      .argument("<slug>")
      .argument("<email>", "the account's email on the server")
      .addOption(roleArgument("its role")),
  )
    .addHelpText(
      "after",
      `\n${ROLES_HELP}\n\n` +
        "The addition asks for your password (on a terminal only): whoever is added receives the next share.\n" +
        "The new member and the organisation's owners are told by e-mail. An account may make 30 additions\n" +
        "an hour, an unknown email included.\n" +
        "The new member opens no vault until a maintainer shares it again (`latchkey env share --org SLUG`),\n" +
        "once they have a sharing key.\n\n" +
        "Examples:\n  latchkey org add acme bob@example.com --role maintainer",
    )
    .action(async (slug: string, email: string, flags: ServerFlags & { role: OrgRole }, command: Command) => {
      state.exitCode = await orgAdd(ctx, slug, email, flags.role, orgOptions(command, flags));
    });

  withServerOptions(
    org
      .command("set-role")
      .description("change a member's role (admin; owner for anything to do with owners)")
      .argument("<slug>")
      .argument("<email>")
      .addArgument(new Argument("<role>", ORG_ROLES.join(", ")).choices(ORG_ROLES)),
  )
    .addHelpText(
      "after",
      `\n${ROLES_HELP}\n\nAn organisation keeps at least one owner: demoting the last one is refused.\n` +
        "The change asks for your password (on a terminal only).\n\n" +
        "Examples:\n  latchkey org set-role acme bob@example.com admin",
    )
    .action(async (slug: string, email: string, role: OrgRole, flags: ServerFlags, command: Command) => {
      state.exitCode = await orgSetRole(ctx, slug, email, role, orgOptions(command, flags));
    });

  withServerOptions(
    org
      .command("remove")
      .description("remove a member and give every vault they could open a new vault key (admin)")
      .argument("<slug>")
      .argument("<email>")
      .option("--no-rotate", "keep the vault keys (their wrapped keys are deleted all the same)")
      .option("--trust-new-members", TRUST_NEW_MEMBERS_HELP),
  )
    .addHelpText(
      "after",
      "\nThe removal asks for your password (on a terminal only). The server deletes the membership and the\n" +
        "member's wrapped keys; then each organisation vault they held a key for is sealed again with a new vault\n" +
        "key, wrapped for the remaining members, as its next version, so a key they kept opens nothing pushed\n" +
        "from then on. This needs a maintainer's role and your own key of each vault; a vault that cannot be\n" +
        "rotated here is named (LK_ORG_ROTATION_INCOMPLETE) for `latchkey org rotate-keys SLUG`.\n" +
        "The report lists, per vault and environment, the names (never the values) of the secrets they could read\n" +
        "and when they last pulled the vault: a new key does not take back what they pulled, so change those\n" +
        "secrets at their source.\n\n" +
        `${TRUSTING_KEYS_HELP}\n\n` +
        "Examples:\n  latchkey org remove acme bob@example.com\n  latchkey org remove acme bob@example.com --json",
    )
    .action(
      async (
        slug: string,
        email: string,
        flags: ServerFlags & { rotate: boolean; trustNewMembers?: boolean },
        command: Command,
      ) => {
        state.exitCode = await orgRemove(ctx, slug, email, {
          ...orgOptions(command, flags),
          rotate: flags.rotate,
          trustNewMembers: flags.trustNewMembers === true,
        });
      },
    );

  withServerOptions(
    org
      .command("rotate-keys")
      .description(
        "give the organisation's vaults new vault keys, wrapped for the current members (maintainer)",
      )
      .argument("<slug>")
      .argument("[vault-ids...]", "only these vaults (default: every vault of the organisation)")
      .option("--trust-new-members", TRUST_NEW_MEMBERS_HELP),
  )
    .addHelpText(
      "after",
      "\nEach vault is sealed again with a new key as its next version and shared with every member's current\n" +
        "sharing key. It finishes what `latchkey org remove` could not (an interrupted removal, a vault only\n" +
        "another maintainer could open), and is the answer to a vault key that may have leaked.\n\n" +
        `${TRUSTING_KEYS_HELP}\n\n` +
        "Examples:\n  latchkey org rotate-keys acme\n  latchkey org rotate-keys acme 0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
    )
    .action(
      async (
        slug: string,
        vaultIds: string[],
        flags: ServerFlags & { trustNewMembers?: boolean },
        command: Command,
      ) => {
        state.exitCode = await orgRotateKeys(ctx, slug, vaultIds, {
          ...orgOptions(command, flags),
          trustNewMembers: flags.trustNewMembers === true,
        });
      },
    );

  withServerOptions(
    org
      .command("trust")
      .description("pin a member's sharing key on this machine, after comparing its fingerprint with them")
      .argument("<slug>")
      .argument("<email>")
      .argument(
        "<fingerprint>",
        "the member's full sharing key fingerprint (64 hex digits), as they read it to you",
      ),
  )
    .addHelpText(
      "after",
      "\nThe fingerprint must come from the member, by a channel other than the server (in person, a call): they\n" +
        'read it from `latchkey org members SLUG` on their machine ("this machine\'s sharing key"). It is pinned\n' +
        "only when it equals the key the server lists for them. This is how a share goes on after a member ran\n" +
        "`latchkey env rotate-sharing-key` (LK_ORG_MEMBER_KEY_CHANGED), and how a script pins a new member first.\n\n" +
        "Examples:\n  latchkey org trust acme bob@example.com 3f2a…(64 hex digits)",
    )
    .action(
      async (slug: string, email: string, fingerprint: string, flags: ServerFlags, command: Command) => {
        state.exitCode = await orgTrust(ctx, slug, email, fingerprint, orgOptions(command, flags));
      },
    );

  withServerOptions(
    org
      .command("delete")
      .description("delete the organisation with its members and shared vault copies (owner)")
      .argument("<slug>")
      .option(
        "--confirm <slug>",
        "the slug again, instead of typing it at the prompt (the password is still asked)",
      ),
  )
    .addHelpText(
      "after",
      "\nEvery member loses the organisation's copies of its vaults (personal copies stay; the audit log stays).\n" +
        "You are asked to type the slug (or repeat it with --confirm SLUG), then your password: deleting needs\n" +
        "a terminal, so a script cannot do it, --confirm or not.\n\n" +
        "Examples:\n  latchkey org delete acme\n  latchkey org delete acme --confirm acme",
    )
    .action(async (slug: string, flags: ServerFlags & { confirm?: string }, command: Command) => {
      state.exitCode = await orgDelete(ctx, slug, {
        ...orgOptions(command, flags),
        ...(flags.confirm === undefined ? {} : { confirm: flags.confirm }),
      });
    });
  return org;
}
