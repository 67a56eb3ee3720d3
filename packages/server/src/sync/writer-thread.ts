/**
 * The sync service's writes (push, rewrap) on a thread of their own, on SQLite. A COMMIT under
 * synchronous=FULL waits for its fsync, and node:sqlite is synchronous: on the event loop, every commit (a few
 * milliseconds for a group of pushes) stops the server from reading, authenticating and answering anything else.
 * The writer thread owns a second connection to the same file with the same settings, runs the same service code
 * with the same group commit (group-commit.ts), and answers each write after its COMMIT returned — so durability
 * is exactly what it was, while the event loop goes on. Reads stay on the main connection; the thread's commits
 * are another connection's to it, which the read caches see (read-cache.ts). Writes of other parts (sign-in,
 * tokens) stay on the main connection and wait for the thread's write lock through the busy timeout.
 *
 * The thread runs the built worker (dist/sync-writer.mjs): the server bin starts it, in-process tests use the
 * in-thread writer instead (ServerDeps.syncWriterWorker).
 */
import { Worker } from "node:worker_threads";
import type { EscrowKey } from "../escrow-key.js";
import type { Actor, PushOutcome, RewrapOutcome, SyncWrites, ValidPush } from "./service.js";

/** A request to the writer thread. */
export type WriterRequest =
  // Without blobBytes: a typed array costs far more to clone than the base64 text it decodes (~10% of a push's
  // time on the event loop); the thread decodes the text, which the route has already checked is canonical.
  | { id: number; op: "push"; actor: Actor; vaultId: string; push: Omit<ValidPush, "blobBytes"> }
  | {
      id: number;
      op: "rewrap";
      actor: Actor;
      vaultId: string;
      request: { wrappedKey: string; version: number };
    };

/** The writer thread's answer to request `id`. */
export type WriterReply =
  | { id: number; ok: true; outcome: PushOutcome | RewrapOutcome }
  | { id: number; ok: false; error: ThreadError };

/** An error as it crosses from the thread: what the server's failure log reads (api/plugin.ts describeFailure). */
export interface ThreadError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  cause?: ThreadError;
}

/** `error` (and up to three causes) in a form postMessage carries; the worker side of errorFrom. */
export function threadError(error: unknown, depth = 0): ThreadError {
  const err = error instanceof Error ? error : new Error(String(error));
  const code = (err as { code?: unknown }).code;
  const cause: unknown = err.cause;
  return {
    name: err.name,
    message: err.message,
    ...(typeof code === "string" ? { code } : {}),
    ...(err.stack === undefined ? {} : { stack: err.stack }),
    ...(cause !== undefined && depth < 3 ? { cause: threadError(cause, depth + 1) } : {}),
  };
}

/** What the thread is started with (workerData). */
export interface WriterData {
  /** The SQLite file. */
  path: string;
  /** The server's escrow key, for pushes to copies with CI (structured-cloned into the thread, never written). */
  escrowKey: EscrowKey | undefined;
}

/** The writes, answered by the thread; `close` ends it once the writes it was given have been answered. */
export interface ThreadWriter extends SyncWrites {
  close(): Promise<void>;
  /** Writes handed to the thread and not answered yet (the metrics' writer queue depth). */
  queueDepth(): number;
}

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

interface Pending {
  resolve: (outcome: PushOutcome | RewrapOutcome) => void;
  reject: (error: Error) => void;
}

/** Rebuilds the thread's error on this side (an Error does not survive postMessage with its code and cause). */
function errorFrom(reply: ThreadError): Error {
  const error = new Error(
    reply.message,
    reply.cause === undefined ? undefined : { cause: errorFrom(reply.cause) },
  ) as Error & { code?: string };
  error.name = reply.name;
  if (reply.code !== undefined) error.code = reply.code;
  if (reply.stack !== undefined) error.stack = reply.stack;
  return error;
}

/**
 * Starts the writer thread on the SQLite file `path`, from the built worker at `workerUrl`, with the server's
 * escrow key. A thread that dies (a bug: the service catches what it expects) fails the writes it had, and the next
 * write starts a new one.
 */
export function startWriterThread(workerUrl: URL, path: string, escrowKey?: EscrowKey): ThreadWriter {
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let worker: Worker | undefined;
  let closing: Promise<void> | undefined;

  const failAll = (error: Error): void => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  const spawn = (): Worker => {
    const data: WriterData = { path, escrowKey };
    const started = new Worker(workerUrl, { workerData: data });
    started.on("message", (reply: WriterReply) => {
      const waiter = pending.get(reply.id);
      if (waiter === undefined) return;
      pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.outcome);
      else waiter.reject(errorFrom(reply.error));
    });
    started.on("error", (error: Error) => {
      failAll(new Error(`the sync writer thread failed: ${error.message}`, { cause: error }));
    });
    started.on("exit", (code) => {
      if (worker === started) worker = undefined;
      failAll(new Error(`the sync writer thread exited (${code})`));
    });
    return started;
  };
  const send = (request: WithoutId<WriterRequest>): Promise<PushOutcome | RewrapOutcome> => {
    if (closing !== undefined) return Promise.reject(new Error("the sync writer thread is closed"));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      const message: WriterRequest = { ...request, id };
      (worker ??= spawn()).postMessage(message);
    });
  };
  worker = spawn();

  return {
    push: (actor, vaultId, { blobBytes: _decoded, ...push }) =>
      send({ op: "push", actor, vaultId, push }) as Promise<PushOutcome>,
    rewrap: (actor, vaultId, request) =>
      send({ op: "rewrap", actor, vaultId, request }) as Promise<RewrapOutcome>,
    queueDepth: () => pending.size,
    close: () =>
      (closing ??= (async () => {
        // The server closes this after its requests have ended, so nothing is pending; wait anyway rather than cut
        // a write off between its COMMIT and its answer.
        while (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
        const running = worker;
        worker = undefined;
        if (running === undefined) return;
        const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
        running.postMessage({ op: "close" });
        await exited;
      })()),
  };
}
