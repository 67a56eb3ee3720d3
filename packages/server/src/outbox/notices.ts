/**
 * The texts of the notices: what the services that change sharing tell the people concerned. Builders only; the
 * caller queues what they return with enqueueNotices (service.ts) in the transaction of the change. They name
 * accounts (e-mail addresses), orgs (slugs) and vaults (ids), never a secret or a key: they are sent in clear
 * text through mail servers the operator does not control.
 */
import type { OrgRole } from "@latchkey/core";
import type { Notice } from "./service.js";

/** A change that is reported by notices. */
export type NoticeEvent =
  | {
      type: "sharing-key-rotated";
      /** The e-mail of the account whose sharing key was replaced. */
      account: string;
      /** When (ISO-8601). */
      at: string;
      /** Slugs of the orgs whose vaults must now be shared with the account again. */
      orgs: readonly string[];
    }
  | {
      type: "member-removed";
      /** The e-mail of the account removed from the org. */
      account: string;
      /** The e-mail of the account that removed it. */
      by: string;
      org: string;
      at: string;
      /** Ids of the org's vaults the removed account could open. */
      vaults: readonly string[];
    }
  | {
      type: "member-added";
      /** The e-mail of the account added to the org. */
      account: string;
      /** The e-mail of the account that added it. */
      by: string;
      org: string;
      role: OrgRole;
      at: string;
    };

/** The owners and admins of one org, who get its impact notices. */
export interface OrgRecipients {
  org: string;
  /** Their e-mail addresses. */
  emails: readonly string[];
}

/** The notice to the account the change was done to. */
export function securityNotice(event: NoticeEvent): Notice {
  const account = line(event.account);
  const at = line(event.at);
  if (event.type === "sharing-key-rotated") {
    const orgs = event.orgs.map(line);
    return {
      recipient: account,
      kind: "security",
      subject: "Latchkey: the sharing key of your account was replaced",
      body: paragraphs(
        `The sharing key of the Latchkey account ${account} was replaced at ${at} ` +
          "(latchkey env rotate-sharing-key, confirmed with your password).",
        orgs.length === 0
          ? "You are in no organisation, so no shared vault is affected."
          : `Until a maintainer shares them again, you cannot pull the vaults of: ${orgs.join(", ")}. ` +
              "Their owners and admins have been told.",
        "If you did not do this, sign in and change your password now, then run " +
          "`latchkey env rotate-sharing-key` again on a machine you trust, and tell the owners of those organisations.",
      ),
    };
  }
  const org = line(event.org);
  if (event.type === "member-added") {
    return {
      recipient: account,
      kind: "security",
      subject: `Latchkey: you were added to the organisation ${org}`,
      body: paragraphs(
        `${line(event.by)} added the Latchkey account ${account} to the organisation ${org} as ${line(event.role)} at ${at}.`,
        `You can pull its vaults once a maintainer shares them again (\`latchkey env share --org ${org}\`); ` +
          `\`latchkey org members ${org}\` lists who else is in it.`,
        "If you do not expect this, tell an owner of the organisation: you may have been added by mistake, or by " +
          "someone using the adding account without its owner knowing.",
      ),
    };
  }
  return {
    recipient: account,
    kind: "security",
    subject: `Latchkey: you were removed from the organisation ${org}`,
    body: paragraphs(
      `${line(event.by)} removed the Latchkey account ${account} from the organisation ${org} at ${at}.`,
      "You can no longer pull its vaults, and new versions of them are not shared with you.",
      "If you think this is a mistake, ask an owner or admin of the organisation.",
    ),
  };
}

/**
 * The notices to the owners and admins (for an addition, the owners) of each org the change touches: one per
 * address and org, none to the account the change was done to (it gets the security notice), and for an
 * addition none to the account that made it (it knows).
 */
export function impactNotices(event: NoticeEvent, recipients: readonly OrgRecipients[]): Notice[] {
  const account = line(event.account);
  const at = line(event.at);
  const skipped = new Set([account, ...(event.type === "member-added" ? [line(event.by)] : [])]);
  const notices: Notice[] = [];
  for (const { org: rawOrg, emails } of recipients) {
    const org = line(rawOrg);
    const text =
      event.type === "member-added"
        ? {
            subject: `Latchkey: ${account} was added to the organisation ${org}`,
            body: paragraphs(
              `${line(event.by)} added the Latchkey account ${account} to the organisation ${org} as ${line(event.role)} at ${at}.`,
              `It receives the organisation's vaults from the next \`latchkey env share --org ${org}\` on.`,
              `If nobody meant to add it, remove it before anyone shares again (\`latchkey org remove ${org} ${account}\`) ` +
                `and check with ${line(event.by)}: someone who took over that account could add an account of their own ` +
                "to read the next share.",
            ),
          }
        : event.type === "sharing-key-rotated"
          ? {
              subject: `Latchkey: ${account} replaced their sharing key (organisation ${org})`,
              body: paragraphs(
                `The Latchkey account ${account}, a member of the organisation ${org}, replaced its sharing key at ${at}.`,
                `Its keys to the organisation's vaults were dropped: it cannot pull them until a maintainer runs ` +
                  `\`latchkey env share --org ${org}\` in each of them. \`latchkey org members ${org}\` shows it ` +
                  "as needing a share.",
                `If ${account} did not expect this, check with them before sharing again: someone who took over the ` +
                  "account would receive what is shared with the new key.",
              ),
            }
          : {
              subject: `Latchkey: ${account} was removed from the organisation ${org}`,
              body: paragraphs(
                `${line(event.by)} removed the Latchkey account ${account} from the organisation ${org} at ${at}.`,
                event.vaults.length === 0
                  ? "It could open none of the organisation's vaults."
                  : `Vaults it could open: ${event.vaults.map(line).join(", ")}. Secrets it could read there stay ` +
                      "known to it: change them at their source where that matters.",
              ),
            };
    for (const email of new Set(emails.map(line))) {
      if (skipped.has(email)) continue;
      notices.push({ recipient: email, kind: "impact", ...text });
    }
  }
  return notices;
}

/** One line of text: control characters (a line break could start a mail header) become spaces. */
function line(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, " ");
}

function paragraphs(...parts: string[]): string {
  return `${parts.join("\n\n")}\n`;
}
