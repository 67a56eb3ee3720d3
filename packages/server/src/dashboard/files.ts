/**
 * The dashboard's built files (packages/web/dist, scripts/build-web.mjs): where they are, and reading one by its
 * plain name. Nothing outside that one directory is ever read: a name is a single segment of safe characters.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Content types of the files the build writes; any other extension is not served. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** A file name the build may write: one segment, no dot first, a served extension. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\.[a-z]+)$/;

/** The built dashboard's directory, found through the workspace package @latchkey/web; null when not installed. */
export function defaultDashboardDir(): string | null {
  try {
    return join(dirname(fileURLToPath(import.meta.resolve("@latchkey/web/package.json"))), "dist");
  } catch {
    return null;
  }
}

/** A file of the dashboard, ready to send. */
export interface DashboardFile {
  body: Buffer;
  contentType: string;
}

/**
 * The file `name` of `dir`, or null when the name is not one the build writes or there is no such file. Read on
 * every request (they are few and small), so a rebuild is served without a restart.
 */
export async function readDashboardFile(dir: string, name: string): Promise<DashboardFile | null> {
  const match = FILE_NAME.exec(name);
  const contentType = match ? CONTENT_TYPES[match[1]!] : undefined;
  if (!contentType) return null;
  try {
    return { body: await readFile(join(dir, name)), contentType };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR")
      return null;
    throw err;
  }
}
