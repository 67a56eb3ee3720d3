/**
 * Child process for the fs tests, run as `node fs-child.ts <bundleDir> <command> ...` on the bundle from
 * fs-bundle.ts (Node strips this file's types itself). Commands:
 * - `umask <octal> <baseDir>`: under that umask, create `<baseDir>/home/vaults` with ensurePrivateDir and
 *   write `vault.enc` into it with writeFileAtomic, plus `control-file` and `control-dir` with plain fs calls
 *   so the parent can check the umask took effect.
 * - `increment <target> <times>`: `times` read-modify-write increments of the counter in `target`, each under
 *   withFileLock. A marker created with O_EXCL inside the lock catches two simultaneous holders; prints
 *   `{"overlaps":N}`.
 * - `hold <target>`: take the lock, print `locked`, and wait to be killed.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import type * as LockModule from "../../src/fs/lock.js";
import type * as SafeFileModule from "../../src/fs/safe-file.js";

const [bundleDir, command, ...args] = process.argv.slice(2);
if (bundleDir === undefined || command === undefined) {
  throw new Error("usage: fs-child.ts <bundleDir> <command> ...");
}
const safeFile = (await import(pathToFileURL(join(bundleDir, "safe-file.js")).href)) as typeof SafeFileModule;
const { withFileLock } = (await import(pathToFileURL(join(bundleDir, "lock.js")).href)) as typeof LockModule;

function arg(index: number): string {
  const value = args[index];
  if (value === undefined) throw new Error(`missing argument ${index + 1} for ${command}`);
  return value;
}

switch (command) {
  case "umask": {
    process.umask(Number.parseInt(arg(0), 8));
    const base = arg(1);
    const vaults = join(base, "home", "vaults");
    await safeFile.ensurePrivateDir(vaults);
    await safeFile.writeFileAtomic(join(vaults, "vault.enc"), "ciphertext");
    writeFileSync(join(base, "control-file"), "", { mode: 0o666 });
    mkdirSync(join(base, "control-dir"), { mode: 0o777 });
    break;
  }
  case "increment": {
    const target = arg(0);
    const times = Number(arg(1));
    const marker = `${target}.holder`;
    let overlaps = 0;
    for (let i = 0; i < times; i++) {
      await withFileLock(target, async () => {
        const held = await open(marker, "wx").catch(() => null);
        if (held === null) overlaps++;
        const before = await safeFile.readFileSafe(target);
        const count = before === null ? 0 : Number(Buffer.from(before).toString("utf8"));
        // Yield so that, without the lock, another process would read the same count.
        await sleep(1);
        await safeFile.writeFileAtomic(target, String(count + 1));
        if (held !== null) {
          await held.close();
          await unlink(marker);
        }
      });
    }
    process.stdout.write(`${JSON.stringify({ overlaps })}\n`);
    break;
  }
  case "hold": {
    // The lock's refresh timer is unref'd; keep the process alive until the test kills it.
    setInterval(() => undefined, 60_000);
    await withFileLock(arg(0), async () => {
      process.stdout.write("locked\n");
      await new Promise(() => undefined);
    });
    break;
  }
  default:
    throw new Error(`unknown command ${command}`);
}
