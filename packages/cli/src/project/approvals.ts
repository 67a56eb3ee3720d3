// The user's approval of what a project file declares that would hand the user's credentials to someone: a
// credential provider (a command Latchkey runs as the user, with the user's environment) or a registry's
// `tokenEnv` (a variable whose value Latchkey sends, prints and hands to package managers for a URL the project
// chose). Cloning a repository must be enough for neither: each declaration is used only once the user has
// approved it on a terminal, bound to the project's root path and a hash of the declaration's kind and content,
// and under CI only when the user's own environment or config.toml allows project declarations.
//
// The same records bind each local vault to the project roots it is used from (kind "vault"): a vault id is
// committed and often public, so a cloned repository could otherwise name the vault this machine keeps for
// another project and have `latchkey run` hand that project's secrets to its own code.
//
// Approvals live in $LATCHKEY_HOME/approvals.json rather than the keystore: they are not secrets, the user should be
// able to read and prune them, and reading a file costs nothing where a keychain round trip may cost a prompt. The
// file is written like every credential file (0600, atomic, never through a link, under a lock) because whoever
// can write it can make Latchkey run a program or send a secret.
import fs from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import {
  LatchkeyError,
  toHex,
  utf8Encode,
  type Approval,
  type ApprovalsFile,
  type DeclarationKind,
} from "@latchkey/core";
import { readConfigToml } from "../config-file.js";
import type { Context } from "../context.js";
import { sha256 } from "../crypto/pure.js";
import { readApprovalsFile, readCiSettings } from "../fast-readers.js";
import { withFileLock } from "../fs/lock.js";
import { checkPrivate, ensurePrivateDir, readFileSafe, writeFileAtomic } from "../fs/safe-file.js";
import { vaultFile } from "../vault/vault-store.js";
import { lineColumn, parseJsonTree } from "./json-edit.js";
import type { Project } from "./project.js";

/** The approvals file under LATCHKEY_HOME. */
export const APPROVALS_FILE = "approvals.json";
/** Set to 1 in a pipeline's environment: project declarations of every kind are used under CI. */
export const ALLOW_PROJECT_CREDENTIALS_VARIABLE = "LATCHKEY_ALLOW_PROJECT_CREDENTIALS";
/** The older switch, for project credential providers only; still honoured so pipelines that set it keep working. */
export const ALLOW_PROJECT_PROVIDERS_VARIABLE = "LATCHKEY_ALLOW_PROJECT_PROVIDERS";

/** One declaration in a project file, as the approval sees it. */
export interface ProjectDeclaration {
  readonly kind: DeclarationKind;
  /** The declaring latchkey.json; its directory is the project root the approval is bound to. */
  readonly file: string;
  /** The declaration's line in `file` (1-based), for messages; null when not known. */
  readonly line: number | null;
  /** What the approval pins, with `kind`: any change to it asks again. JSON-serialisable. */
  readonly content: unknown;
}

/** A request to use a declaration now: the declaration, and the words to ask and refuse with. */
export interface ApprovalRequest extends ProjectDeclaration {
  /** The refusal's code: each kind keeps its own, so scripts can tell what was refused. */
  readonly code: "LK_PROVIDER_NOT_APPROVED" | "LK_TOKEN_ENV_NOT_APPROVED" | "LK_VAULT_NOT_APPROVED";
  /** Names the declaration in messages, e.g. `the credential provider "node" "x.js"`. */
  readonly subject: string;
  /** The body of the prompt: what the declaration is and what it would do once allowed. */
  readonly prompt: string;
  /** The prompt's question, ending in "for this project?". */
  readonly question: string;
  /** What else the user can do, for the refusals' hints; default: declare it in config.toml instead. */
  readonly alternative?: string;
  /** More of the refusal's details (beside path, line and kind), for --json. */
  readonly details?: Readonly<Record<string, unknown>>;
}

// Hashed in JavaScript: `run` and `env get` check a vault binding on every call, and loading node:crypto would
// cost them more than the rest of the check (crypto/pure.ts).
/** SHA-256 (hex) of a declaration's kind and content; JSON keeps the parts unambiguous. */
export function declarationSha256(kind: DeclarationKind, content: unknown): string {
  return toHex(sha256(utf8Encode(JSON.stringify([kind, content]))));
}

/** The project root a declaration belongs to: the directory of its latchkey.json. */
export function projectRootOf(declaration: Pick<ProjectDeclaration, "file">): string {
  return resolve(dirname(declaration.file));
}

/** `file:line`, or the file alone when the line is not known. */
export function declarationLocation(declaration: Pick<ProjectDeclaration, "file" | "line">): string {
  return declaration.line === null ? declaration.file : `${declaration.file}:${declaration.line}`;
}

/**
 * Text as one line a person can check: JSON-quoted, and every invisible or control character (escape sequences,
 * bidirectional overrides, line separators) spelled out, so a project cannot make a prompt show something other
 * than what it declares.
 */
export function displayQuoted(text: string): string {
  return JSON.stringify(text).replace(
    /[\p{C}\p{Zl}\p{Zp}]/gu,
    (ch) => `\\u{${ch.codePointAt(0)!.toString(16)}}`,
  );
}

/** True under CI: `CI` set to anything but empty, `false` or `0` (the convention CI services follow). */
export function isCI(env: Context["env"]): boolean {
  const value = env.CI;
  return value !== undefined && value !== "" && value.toLowerCase() !== "false" && value !== "0";
}

function approvalsPath(ctx: Context): string {
  return join(ctx.paths.home, APPROVALS_FILE);
}

function corruptApprovals(file: string, why: string): LatchkeyError {
  return new LatchkeyError("LK_STORE_CORRUPT", {
    message: `${file} is not a Latchkey approvals file (${why}).`,
    hint: "Move it aside; every project credential provider and tokenEnv will then ask for approval again, and each vault is bound again to the first project that uses it.",
    details: { path: file },
  });
}

/**
 * Reads the approvals file (version 2, or version 1 as written before tokenEnv approvals); a missing file holds
 * none. A version-1 entry approved a provider's argv for whichever registry the project named, so it is read as
 * nothing (that provider asks again); so is, in effect, a version-2 provider entry without a registry, since its
 * hash matches no declaration's content any more.
 */
export async function readApprovals(ctx: Context): Promise<Approval[]> {
  const file = approvalsPath(ctx);
  const bytes = await readFileSafe(file);
  if (bytes === null) return [];
  // Whoever can write this file can make Latchkey run a program: refuse one that others could have written.
  const report = await checkPrivate(file);
  if (report !== null && report.problems.length > 0) {
    throw new LatchkeyError("LK_FILE_PERMISSIONS", {
      message: `${file} ${report.problems.join("; ")}; its approvals are not trusted.`,
      details: { path: file },
    });
  }
  let doc: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    parseJsonTree(text);
    doc = JSON.parse(text);
  } catch {
    throw corruptApprovals(file, "not strict JSON");
  }
  const read = readApprovalsFile(doc);
  if (!read.ok) throw corruptApprovals(file, read.message);
  return read.value.version === 2 ? read.value.approvals : [];
}

function matches(approval: Approval, project: string, kind: DeclarationKind, hash: string): boolean {
  return approval.project === project && approval.kind === kind && approval.sha256 === hash;
}

/** Whether the user approved `declaration` for its project (same root path, same kind and content). */
export async function isApproved(ctx: Context, declaration: ProjectDeclaration): Promise<boolean> {
  const project = projectRootOf(declaration);
  const hash = declarationSha256(declaration.kind, declaration.content);
  return (await readApprovals(ctx)).some((a) => matches(a, project, declaration.kind, hash));
}

/** Records the user's approval of `declaration` for its project, under a lock, 0600, as a version-2 file. */
export async function recordApproval(ctx: Context, declaration: ProjectDeclaration): Promise<void> {
  await ensurePrivateDir(ctx.paths.home);
  const file = approvalsPath(ctx);
  await withFileLock(file, async (signal) => {
    const approvals = await readApprovals(ctx);
    const project = projectRootOf(declaration);
    const hash = declarationSha256(declaration.kind, declaration.content);
    if (approvals.some((a) => matches(a, project, declaration.kind, hash))) return;
    approvals.push({
      project,
      kind: declaration.kind,
      sha256: hash,
      declaration: declaration.content,
      approvedAt: new Date(ctx.clock.now()).toISOString(),
    });
    const doc: ApprovalsFile = { version: 2, approvals };
    signal.throwIfAborted();
    await writeFileAtomic(file, `${JSON.stringify(doc, null, 2)}\n`);
  });
}

/**
 * Whether the user's own configuration lets project declarations be used under CI: ALLOW_PROJECT_CREDENTIALS=1 in
 * the environment, `allow_project_credentials = true` under `[ci]` in config.toml, or, for providers only, the
 * older LATCHKEY_ALLOW_PROJECT_PROVIDERS=1.
 */
async function allowedInCI(ctx: Context, kind: DeclarationKind): Promise<boolean> {
  if (ctx.env[ALLOW_PROJECT_CREDENTIALS_VARIABLE] === "1") return true;
  if (kind === "provider" && ctx.env[ALLOW_PROJECT_PROVIDERS_VARIABLE] === "1") return true;
  const { file, doc } = await readConfigToml(ctx);
  if (doc.ci === undefined) return false;
  const ci = readCiSettings(doc.ci);
  if (ci.ok) return ci.value.allow_project_credentials === true;
  const key = ["ci", ...ci.path].join(".");
  throw new LatchkeyError("LK_CONFIG_INVALID", {
    message: `Invalid configuration in ${file} at ${key}: ${ci.message}.`,
    details: { path: file, key },
  });
}

function refused(request: ApprovalRequest, message: string, hint: string): LatchkeyError {
  return new LatchkeyError(request.code, {
    message,
    hint,
    details: {
      path: request.file,
      ...(request.line === null ? {} : { line: request.line }),
      kind: request.kind,
      ...request.details,
    },
  });
}

/**
 * Decides whether a project declaration may be used now, asking on a terminal when it has not been approved.
 * Returns when it may; throws `request.code` (naming the file and line) when it may not: under CI without the
 * user's opt-in, without a terminal when unapproved, or when the user declines.
 */
export async function authorizeDeclaration(ctx: Context, request: ApprovalRequest): Promise<void> {
  const project = projectRootOf(request);
  const where = declarationLocation(request);
  const yourOwn =
    request.alternative ?? "declare it in your own config.toml instead, where no approval is needed";
  if (isCI(ctx.env)) {
    // In CI nobody can answer a prompt and an approval file is whatever the image carries: only an explicit
    // opt-in from the pipeline's own environment or its user's config.toml lets the repository's declaration count.
    if (await allowedInCI(ctx, request.kind)) return;
    throw refused(
      request,
      `CI is set: ${request.subject} declared at ${where} is not used.`,
      `If you trust this repository, set ${ALLOW_PROJECT_CREDENTIALS_VARIABLE}=1 in the pipeline or \`allow_project_credentials = true\` under [ci] in the CI user's config.toml; or ${yourOwn}.`,
    );
  }
  if (await isApproved(ctx, request)) return;
  if (!(ctx.stdin.isTTY && ctx.stderr.isTTY)) {
    throw refused(
      request,
      `${capitalize(request.subject)} declared at ${where} has not been approved for the project at ${project}.`,
      `Run the command once on a terminal to review and approve it (kept in ${approvalsPath(ctx)}), or ${yourOwn}.`,
    );
  }
  const line = request.line === null ? "" : `, line ${request.line}`;
  const approved = await ctx.prompts.confirm(
    `The project at ${project} (${basename(request.file)}${line}) declares ${request.prompt}\n` +
      `${request.question} (A changed declaration or a moved project asks again.)`,
    false,
  );
  if (!approved) {
    throw refused(
      request,
      `You declined ${request.subject} declared at ${where}.`,
      `Run the command again to be asked again, or ${request.alternative ?? `remove the declaration from ${basename(request.file)}`}.`,
    );
  }
  await recordApproval(ctx, request);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A project's use of the local vault its latchkey.json names, for `authorizeVaultUse`. */
export interface VaultUse {
  /** The vault id the project names, validated. */
  readonly vaultId: string;
  /** The project naming it; its root is what the vault gets bound to. */
  readonly project: Pick<Project, "file" | "raw">;
  /**
   * Whether this use creates the vault here (`env set`, `env import`) or has just brought it here (`env pull`):
   * while no root is bound to the vault, such a use binds this one even when the vault was not here before.
   */
  readonly creates: boolean;
}

/**
 * Decides whether a project may read or write the local vault its latchkey.json names, asking on a terminal when
 * this machine uses that vault for other project roots only. A vault is bound, without asking, to the first root
 * that uses it: the project that creates it here or first pulls it here, or, for a vault from before bindings
 * existed, the first project that uses it (trust on first use). A read of a vault that is not on this machine
 * reads nothing and binds nothing. `LATCHKEY_VAULT_ID` needs no approval: the user's own environment chose the
 * vault, not a file. Throws LK_VAULT_NOT_APPROVED (naming the file, the line and the roots the vault is bound to)
 * when the use may not go ahead; see `authorizeDeclaration`.
 */
export async function authorizeVaultUse(ctx: Context, use: VaultUse): Promise<void> {
  if (ctx.env.LATCHKEY_VAULT_ID !== undefined) return;
  const { vaultId } = use;
  const binding: ProjectDeclaration = { kind: "vault", file: use.project.file, line: null, content: vaultId };
  const root = projectRootOf(binding);
  const hash = declarationSha256("vault", vaultId);
  const bound = [
    ...new Set(
      (await readApprovals(ctx)).filter((a) => a.kind === "vault" && a.sha256 === hash).map((a) => a.project),
    ),
  ];
  if (bound.includes(root)) return;
  if (bound.length === 0) {
    if (use.creates || exists(vaultFile(ctx.paths.vaults, vaultId))) await recordApproval(ctx, binding);
    return;
  }
  // A root whose latchkey.json is gone is most likely this project before a move: say so, it decides the answer.
  const others = bound
    .map((p) => (exists(join(p, "latchkey.json")) ? p : `${p} (no longer there)`))
    .join(", ");
  await authorizeDeclaration(ctx, {
    ...binding,
    line: vaultLine(use.project.raw),
    code: "LK_VAULT_NOT_APPROVED",
    subject: `vault ${vaultId} (this machine uses it for ${others})`,
    prompt:
      `vault ${vaultId}, which this machine uses for ${others}. Allowed, this project's commands read and ` +
      "change that vault's secrets, and `latchkey run` hands them to its programs.",
    question: `Use vault ${vaultId} for this project?`,
    alternative: `remove "vault" from ${basename(use.project.file)} if this project should have a vault of its own`,
    details: { vaultId, projects: bound },
  });
}

/** The line (1-based) of the "vault" member in latchkey.json's text, for messages. */
function vaultLine(raw: string): number | null {
  const body = raw.replace(/^\uFEFF/, "");
  try {
    const tree = parseJsonTree(body);
    const member = tree.type === "object" ? tree.members.find((m) => m.key === "vault") : undefined;
    return member === undefined ? null : lineColumn(body, member.keyStart).line;
  } catch {
    return null;
  }
}

// Synchronous, like project.ts's walk to the project root: one lstat needs no trip through the promise API.
function exists(path: string): boolean {
  try {
    return fs.lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}
