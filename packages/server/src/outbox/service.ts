/**
 * The outbox service: queueing notices inside the caller's write transaction, and the states a stored notice
 * is in. Queued in the transaction of the change a notice reports, a notice exists exactly when the change does:
 * a rolled-back change queues nothing, and a committed one cannot lose its notice to a crash before a send.
 */
import type { OrgRole } from "@latchkey/core";
import { timeOrderedId } from "../db/ids.js";
import type { Db, OutboxRow } from "./data.js";
import { insertNotices } from "./data.js";
import { impactNotices, securityNotice, type NoticeEvent } from "./notices.js";

/** `security`: to the account a change was done to; `impact`: to the owners and admins of an org it touches. */
export type NoticeKind = "security" | "impact";

/** One e-mail to send. Subject and body name accounts, orgs and vaults only: never a secret value or a key. */
export interface Notice {
  recipient: string;
  kind: NoticeKind;
  subject: string;
  /** Plain text. */
  body: string;
}

/**
 * Queues `notice` in `trx`, the transaction of the change it reports (call it before that transaction commits,
 * never after). `createdAt` is the change's time (ISO-8601), and it is due at once.
 */
export function enqueueNotice(trx: Db, notice: Notice, createdAt: string): Promise<void> {
  return enqueueNotices(trx, [notice], createdAt);
}

/** Queues several notices in `trx`, as {@link enqueueNotice} does one. */
export function enqueueNotices(trx: Db, notices: readonly Notice[], createdAt: string): Promise<void> {
  const ms = Date.parse(createdAt);
  return insertNotices(
    trx,
    notices.map((n) => ({ ...n, id: timeOrderedId(ms), createdAt })),
  );
}

/** Where a stored notice is, as `latchkey-server admin outbox` shows it. */
export type NoticeStatus =
  /** Not sent, and no attempt has failed (one may be running). */
  | "queued"
  /** An attempt failed; another one is due at next_attempt_at. */
  | "retrying"
  | "sent"
  /** Every allowed attempt failed; kept for the operator to see. */
  | "failed";

/** The status of a stored row. */
export function noticeStatus(
  row: Pick<OutboxRow, "sent_at" | "next_attempt_at" | "last_error">,
): NoticeStatus {
  if (row.sent_at !== null) return "sent";
  if (row.next_attempt_at === null) return "failed";
  return row.last_error === null ? "queued" : "retrying";
}

/**
 * The addresses of the members of organisations who hold one of `roles`, read in the caller's transaction
 * (orgs/data.ts orgNoticeRecipients, wired in app.ts: the outbox imports no other slice).
 */
export type OrgRecipientsReader = (
  trx: Db,
  orgIds: readonly string[],
  roles: readonly OrgRole[],
) => Promise<readonly { slug: string; emails: readonly string[] }[]>;

/** A member's removal as the organisations slice reports it (its MemberRemovedEvent has these fields). */
export interface MemberRemoval {
  orgId: string;
  slug: string;
  removedEmail: string;
  actorEmail: string;
  vaultIds: readonly string[];
  /** When (ISO-8601): the removal's audit row's time. */
  at: string;
}

/** A member's addition as the organisations slice reports it (its MemberAddedEvent has these fields). */
export interface MemberAddition {
  orgId: string;
  slug: string;
  addedEmail: string;
  role: OrgRole;
  actorEmail: string;
  /** When (ISO-8601): the addition's audit row's time. */
  at: string;
}

/** Who hears of a change to an organisation; an addition only its owners (admins add members every day). */
const IMPACT_ROLES: readonly OrgRole[] = ["owner", "admin"];
const ADDITION_ROLES: readonly OrgRole[] = ["owner"];

/** Queueing the notices of changes to sharing, for the services that make them. */
export interface SharingNotices {
  /**
   * Queues in `trx` the security notice to the account `event` was done to and the impact notices to the owners
   * and admins of each of `orgIds`, read in the same transaction (so they are who holds those roles when the change
   * commits).
   */
  queue: (trx: Db, event: NoticeEvent, orgIds: readonly string[]) => Promise<void>;
  /** The organisation routes' removal hook (OrgDeps.onMemberRemoved), run in the removal's transaction. */
  memberRemoved: (trx: Db, removal: MemberRemoval) => Promise<void>;
  /**
   * The organisation routes' addition hook (OrgDeps.onMemberAdded), run in the addition's transaction: the
   * security notice to the added account, impact notices to the owners but the one who added it.
   */
  memberAdded: (trx: Db, addition: MemberAddition) => Promise<void>;
}

/** The notices of changes to sharing, reading recipients with `recipientsOf`. */
export function sharingNotices(recipientsOf: OrgRecipientsReader): SharingNotices {
  const notify = async (
    trx: Db,
    event: NoticeEvent,
    orgIds: readonly string[],
    roles: readonly OrgRole[],
  ): Promise<void> => {
    const recipients = await recipientsOf(trx, orgIds, roles);
    await enqueueNotices(
      trx,
      [
        securityNotice(event),
        ...impactNotices(
          event,
          recipients.map((r) => ({ org: r.slug, emails: r.emails })),
        ),
      ],
      event.at,
    );
  };
  const queue = (trx: Db, event: NoticeEvent, orgIds: readonly string[]): Promise<void> =>
    notify(trx, event, orgIds, IMPACT_ROLES);
  return {
    queue,
    memberAdded: (trx, addition) =>
      notify(
        trx,
        {
          type: "member-added",
          account: addition.addedEmail,
          by: addition.actorEmail,
          org: addition.slug,
          role: addition.role,
          at: addition.at,
        },
        [addition.orgId],
        ADDITION_ROLES,
      ),
    memberRemoved: (trx, removal) =>
      queue(
        trx,
        {
          type: "member-removed",
          account: removal.removedEmail,
          by: removal.actorEmail,
          org: removal.slug,
          at: removal.at,
          vaults: removal.vaultIds,
        },
        [removal.orgId],
      ),
  };
}
