/**
 * `latchkey-server admin …`: account administration, and the outbox's notices, on the server's own database (the
 * same --data-dir and DATABASE_URL as the server, migrated first). Passwords come from a masked prompt or stdin, never argv; the
 * TOTP enrollment URI is printed once on stdout and never logged.
 */
import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { LatchkeyError } from "@latchkey/core";
import { backup, restore, type RunTool } from "./backup.js";
import { openDatabase } from "./db/index.js";
import { migrateToLatest } from "./db/migrations.js";
import { createAccount, enrollTotp, normalizeEmail } from "./identity/accounts.js";
import { deriveIdentityKeys } from "./identity/keys.js";
import { outboxOptions, OUTBOX_USAGE, printOutbox } from "./outbox/admin.js";
import { loadServerSecret } from "./secret.js";
import { DEFAULT_DATA_DIR, prepareDataDir } from "./server.js";

/** Help of `latchkey-server admin`. */
export const ADMIN_USAGE = `Usage: latchkey-server admin create-user EMAIL [--data-dir DIR]
       latchkey-server admin enroll-totp EMAIL [--data-dir DIR]
       latchkey-server admin outbox [--json] [--body] [--limit N] [--data-dir DIR]
       latchkey-server admin backup FILE [--include-secret] [--force] [--data-dir DIR]
       latchkey-server admin restore FILE [--force] [--data-dir DIR]

  create-user EMAIL   create an account. The password is read from a masked prompt on a terminal, or as one
                      line from stdin otherwise (e.g. from a secret manager); it is never an argument. It
                      needs 12 to 1024 characters: a passphrase of a few words is easiest.
  enroll-totp EMAIL   turn on two-step sign-in (TOTP) for the account, replacing any earlier enrollment. Prints
                      an otpauth:// URI once on stdout: it IS the secret. Hand it to the user (QR code or their
                      authenticator app), then discard it.
${OUTBOX_USAGE}
  backup FILE         write the database to FILE while the server keeps serving (SQLite: one consistent copy;
                      PostgreSQL: pg_dump --format=custom, which must be on PATH) and FILE.manifest.json, both
                      0600. The server secret and the escrow key are left out unless --include-secret: then
                      they go to FILE.secrets.json (0600), to be kept apart. --force replaces existing files.
  restore FILE        put the backup FILE into the database (SQLite: the data directory's file, checked first;
                      PostgreSQL: pg_restore), and FILE.secrets.json's secrets, if any, into the data
                      directory. Stop the server first. A database that is not empty is replaced only with
                      --force. See docs/operations.md, "Backups and restore drills".
All open the server's database: --data-dir DIR (default ./${DEFAULT_DATA_DIR}) and DATABASE_URL as for the
server; enroll-totp also needs the server's secret (LATCHKEY_SERVER_SECRET or DIR/server-secret).
`;

/** What the admin commands touch. */
export interface AdminDeps {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** The password for create-user: a masked prompt on a TTY, else one line of stdin. */
  readPassword: (prompt: string) => Promise<string>;
  randomBytes: (n: number) => Uint8Array;
  now?: () => Date;
  /** Runs pg_dump / pg_restore for a PostgreSQL backup or restore (backup.ts spawnTool in the real process). */
  runTool?: RunTool;
}

/** Runs `admin ARGS…` (argv after "admin"); resolves with the exit code. Throws catalogue errors. */
export async function runAdmin(argv: readonly string[], deps: AdminDeps): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        "data-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
        body: { type: "boolean" },
        limit: { type: "string" },
        force: { type: "boolean" },
        "include-secret": { type: "boolean" },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new LatchkeyError("LK_USAGE", {
      message: err instanceof Error ? err.message : String(err),
      hint: "Run `latchkey-server admin --help`.",
    });
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    deps.stdout.write(ADMIN_USAGE);
    return values.help ? 0 : 2;
  }
  const [command, email, ...rest] = positionals;
  const backupOption = (["force", "include-secret"] as const).find((name) => values[name] !== undefined);
  if (command === "backup" || command === "restore") {
    return runBackupCommand(command, positionals.slice(1), values, deps);
  }
  if (backupOption !== undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--${backupOption} is an option of admin backup and admin restore only.`,
      hint: "Run `latchkey-server admin --help`.",
    });
  }
  const outboxOption = (["json", "body", "limit"] as const).find((name) => values[name] !== undefined);
  if (command === "outbox" && email !== undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: "admin outbox takes no argument.",
      hint: "Run `latchkey-server admin --help`.",
    });
  }
  if (command !== "outbox" && outboxOption !== undefined) {
    throw new LatchkeyError("LK_USAGE", {
      message: `--${outboxOption} is an option of admin outbox only.`,
      hint: "Run `latchkey-server admin --help`.",
    });
  }
  if (
    command !== "outbox" &&
    ((command !== "create-user" && command !== "enroll-totp") || email === undefined || rest.length > 0)
  ) {
    throw new LatchkeyError("LK_USAGE", {
      message:
        command === "create-user" || command === "enroll-totp"
          ? `admin ${command} takes exactly one EMAIL.`
          : `Unknown admin command "${command ?? ""}".`,
      hint: "Run `latchkey-server admin --help`.",
    });
  }
  const dataDir = resolve(deps.cwd, values["data-dir"] ?? DEFAULT_DATA_DIR);
  const now = deps.now ?? (() => new Date());

  // Arguments are checked, and the password asked, before the database is touched: a typo costs nothing.
  const outbox =
    command === "outbox"
      ? outboxOptions({ json: values.json === true, body: values.body === true, limit: values.limit })
      : undefined;
  const account = email ?? "";
  if (outbox === undefined) normalizeEmail(account);
  const password =
    command === "create-user" ? await deps.readPassword(`Password for ${account}: `) : undefined;

  await prepareDataDir(dataDir);
  const databaseUrl = deps.env.DATABASE_URL || undefined;
  const database = await openDatabase({ dataDir, ...(databaseUrl ? { databaseUrl } : {}) });
  try {
    await migrateToLatest(database.db);
    if (outbox !== undefined) return await printOutbox(database.db, outbox, deps);
    const accountDeps = { db: database.db, now, randomId: randomUUID };
    if (command === "create-user") {
      const created = await createAccount(accountDeps, {
        email: account,
        password: password ?? "",
        via: "admin",
      });
      deps.stderr.write(`Created the account ${created.email}.\n`);
      deps.stdout.write(`${created.userId}\n`);
      return 0;
    }
    const { secret } = await loadServerSecret({ env: deps.env, dataDir, randomBytes: deps.randomBytes });
    const publicUrl = deps.env.PUBLIC_URL;
    const { uri } = await enrollTotp(
      {
        ...accountDeps,
        keys: deriveIdentityKeys(secret),
        issuerName: publicUrl ? `Latchkey (${safeHost(publicUrl)})` : "Latchkey",
      },
      account,
    );
    deps.stderr.write(
      "Two-step sign-in is on for this account. The URI below is its secret: give it to the user once " +
        "(as a QR code or typed into an authenticator app) and do not store it.\n",
    );
    deps.stdout.write(`${uri}\n`);
    return 0;
  } finally {
    await database.close();
  }
}

async function runBackupCommand(
  command: "backup" | "restore",
  files: readonly string[],
  values: {
    "data-dir"?: string;
    force?: boolean;
    "include-secret"?: boolean;
    json?: boolean;
    body?: boolean;
    limit?: string;
  },
  deps: AdminDeps,
): Promise<number> {
  const other = (["json", "body", "limit"] as const).find((name) => values[name] !== undefined);
  const usage = (message: string): LatchkeyError =>
    new LatchkeyError("LK_USAGE", { message, hint: "Run `latchkey-server admin --help`." });
  if (other !== undefined) throw usage(`--${other} is an option of admin outbox only.`);
  if (command === "restore" && values["include-secret"] !== undefined) {
    throw usage("admin restore takes no --include-secret: it restores the secrets when the backup has them.");
  }
  const [file] = files;
  if (file === undefined || files.length > 1) throw usage(`admin ${command} takes exactly one FILE.`);
  const backupDeps = {
    env: deps.env,
    dataDir: resolve(deps.cwd, values["data-dir"] ?? DEFAULT_DATA_DIR),
    stderr: deps.stderr,
    randomBytes: deps.randomBytes,
    now: deps.now ?? (() => new Date()),
    runTool:
      deps.runTool ??
      (() => Promise.reject(Object.assign(new Error("no program runner"), { code: "ENOENT" }))),
  };
  const path = resolve(deps.cwd, file);
  if (command === "backup") {
    await backup(
      path,
      { force: values.force === true, includeSecret: values["include-secret"] === true },
      backupDeps,
    );
  } else {
    await restore(path, { force: values.force === true }, backupDeps);
  }
  return 0;
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "server";
  }
}

/**
 * Reads a password: on a terminal a masked prompt (raw mode, nothing echoed; Ctrl-C or Ctrl-D cancels with
 * LK_CANCELLED), otherwise the first line of stdin.
 */
export async function readPasswordFromProcess(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    let text = "";
    stdin.setEncoding("utf8");
    for await (const chunk of stdin) {
      text += chunk as string;
      if (text.includes("\n")) break;
    }
    const line = text.split(/\r?\n/, 1)[0] ?? "";
    return line;
  }
  // Raw mode first, then the prompt: a key typed as soon as the prompt shows must not meet the terminal's line
  // discipline, where Ctrl-C would kill the process and Ctrl-D end the input unseen.
  stdin.setRawMode(true);
  stdin.setEncoding("utf8");
  stdin.resume();
  process.stderr.write(prompt);
  try {
    return await new Promise<string>((done, fail) => {
      let typed = "";
      const onData = (chunk: string): void => {
        for (const char of chunk) {
          if (char === "\r" || char === "\n") {
            stdin.off("data", onData);
            done(typed);
            return;
          }
          // Ctrl-C, or Ctrl-D: in raw mode neither is a signal or an end of input, only a character.
          if (char === "\u0003" || char === "\u0004") {
            stdin.off("data", onData);
            fail(
              new LatchkeyError("LK_CANCELLED", {
                message: "Cancelled at the password prompt; no account was created.",
                hint: "Run `latchkey-server admin create-user EMAIL` again, or pipe the password on stdin (one line).",
              }),
            );
            return;
          }
          if (char === "\u007f" || char === "\b") typed = typed.slice(0, -1);
          else typed += char;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write("\n");
  }
}
