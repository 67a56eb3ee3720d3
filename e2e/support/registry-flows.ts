// Shared pieces of the registry suites (e2e/registry*.test.ts): a project whose CLI runs get a TMPDIR of their
// own under the test's root, a stand-in browser for npm's web login, and the canary search every flow ends with.
import { chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import { allFiles, tempProject, type TempProject, type TempProjectOptions } from "./project.js";
import { mkdir } from "node:fs/promises";

/** A temporary project whose CLI runs also put their temporary files under its root. */
export async function registryProject(options: TempProjectOptions = {}): Promise<TempProject> {
  const p = await tempProject(options);
  const tmp = join(p.root, "tmp");
  await mkdir(tmp);
  const env = p.env.bind(p);
  p.env = (extra = {}) => env({ TMPDIR: tmp, ...extra });
  return p;
}

/**
 * Writes a program to stand in for the user's browser (BROWSER): it records its argv in `argv.log` beside it,
 * then visits the URL it was given, which is what a person finishing the login in a browser amounts to.
 */
export async function fakeBrowser(dir: string): Promise<{ program: string; argvLog: string }> {
  const program = join(dir, "browser");
  const argvLog = join(dir, "argv.log");
  await writeFile(
    program,
    `#!/bin/sh\nprintf '%s\\n' "$0" "$@" >> '${argvLog}'\n` +
      `exec '${process.execPath}' -e 'fetch(process.argv[1]).then((r) => r.text())' "$1"\n`,
  );
  await chmod(program, 0o755);
  return { program, argvLog };
}

/**
 * Every file under `root` (HOME, LATCHKEY_HOME, the project, TMPDIR), searched for each secret: none may appear
 * in any of them, the keystore's encrypted files included (they hold only ciphertext).
 */
export async function expectNoSecretOnDisk(root: string, secrets: readonly string[]): Promise<string[]> {
  const files = await allFiles(root);
  for (const file of files) {
    const bytes = await readFile(file);
    for (const secret of secrets) {
      expect(secret.length, "a canary must be long enough to be meaningful").toBeGreaterThanOrEqual(8);
      expect(bytes.includes(Buffer.from(secret)), `${secret.slice(0, 6)}… found in ${file}`).toBe(false);
    }
  }
  return files;
}
