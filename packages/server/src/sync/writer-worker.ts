/**
 * The writer thread (writer-thread.ts): its own connection to the server's SQLite file, the sync service on it,
 * and one answer per request after the write's COMMIT returned. Built as dist/sync-writer.mjs.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Kysely } from "kysely";
import { timeOrderedId } from "../db/ids.js";
import { openSqliteFile } from "../db/index.js";
import type { Database } from "../db/schema.js";
import { NodeSqliteDialect } from "../db/sqlite-dialect.js";
import { createSyncService } from "./service.js";
import { threadError, type WriterData, type WriterReply, type WriterRequest } from "./writer-thread.js";

const port = parentPort;
if (port === null) throw new Error("sync-writer runs as a worker thread of latchkey-server");
const { path, escrowKey } = workerData as WriterData;
const db = new Kysely<Database>({ dialect: new NodeSqliteDialect(() => openSqliteFile(path)) });
const service = createSyncService({ db, now: () => new Date(), randomId: () => timeOrderedId(), escrowKey });

const reply = (message: WriterReply): void => port.postMessage(message);

port.on("message", (message: WriterRequest | { op: "close" }) => {
  if (message.op === "close") {
    void db.destroy().finally(() => port.close());
    return;
  }
  const { id } = message;
  const outcome =
    message.op === "push"
      ? service.push(message.actor, message.vaultId, {
          ...message.push,
          blobBytes: Buffer.from(message.push.encryptedBlob, "base64"),
        })
      : service.rewrap(message.actor, message.vaultId, message.request);
  outcome.then(
    (value) => reply({ id, ok: true, outcome: value }),
    (error: unknown) => reply({ id, ok: false, error: threadError(error) }),
  );
});
