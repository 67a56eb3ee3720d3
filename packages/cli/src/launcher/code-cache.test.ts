import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  PRUNE_AFTER_MS,
  codeCacheBase,
  codeCacheDir,
  compileCacheDir,
  enableCompileCache,
  loadCachedScript,
  privateCacheDir,
  type CacheLocation,
} from "./code-cache.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "latchkey-code-cache-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const noImport = () => Promise.reject(new Error("no import in this test"));

// A bundle shaped like fast.cjs: CommonJS, with one large function that only runs when asked to.
const BUNDLE = `
"use strict";
function large(n) {
  let total = 0;
  ${Array.from({ length: 200 }, (_, i) => `total += (n * ${i + 1}) % ${i + 7};`).join("\n  ")}
  return total;
}
module.exports = { large, loadExternal: (name) => __latchkeyImportExternal(name) };
`;

async function bundle(): Promise<string> {
  const file = join(root, "bundle.cjs");
  await writeFile(file, BUNDLE);
  return file;
}

type Bundle = { large(n: number): number; loadExternal(name: string): Promise<unknown> };

describe.skipIf(process.platform === "win32")("codeCacheBase", () => {
  it("falls back to the home LATCHKEY_HOME defaults under when HOME is unset, as os.homedir() answers it", () => {
    expect(codeCacheBase({})).toBe(join(homedir(), ".cache", "latchkey"));
    expect(codeCacheBase({ HOME: "/h" })).toBe("/h/.cache/latchkey");
    expect(codeCacheBase({ HOME: "/h", XDG_CACHE_HOME: "/x" })).toBe("/x/latchkey");
    expect(codeCacheBase({ HOME: "/h", NODE_DISABLE_COMPILE_CACHE: "1" })).toBeNull();
  });
});

describe("enableCompileCache", () => {
  it("makes Node's compile-cache directories 0700, whatever the umask", async () => {
    const cache = join(root, "cache");
    await mkdir(cache, { mode: 0o700 });
    const umask = process.umask(0o022);
    try {
      enableCompileCache(cache);
    } finally {
      process.umask(umask);
    }
    // The umask this process had is back: only Node's directories were made under 077.
    expect(process.umask()).toBe(umask);
    const dir = compileCacheDir(cache);
    const made = [dir, ...(await readdir(dir)).map((name) => join(dir, name))];
    expect(made.length).toBeGreaterThan(1);
    for (const path of made) expect(((await stat(path)).mode & 0o777).toString(8)).toBe("700");
  });
});

describe("privateCacheDir", () => {
  it("creates the directory, and its missing parents, for this user alone", async () => {
    const dir = join(root, "cache", "latchkey");
    expect(privateCacheDir(dir)).toBe(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(privateCacheDir(dir)).toBe(dir);
  });

  it("refuses a symlink, and a directory others may write", async () => {
    const real = join(root, "real");
    await mkdir(real, { mode: 0o700 });
    await symlink(real, join(root, "link"));
    expect(privateCacheDir(join(root, "link"))).toBeNull();

    const shared = join(root, "shared");
    await mkdir(shared);
    await chmod(shared, 0o770);
    expect(privateCacheDir(shared)).toBeNull();

    // Whoever can write the parent can swap the directory for their own.
    const openParent = join(root, "open");
    await mkdir(join(openParent, "latchkey"), { recursive: true, mode: 0o700 });
    await chmod(openParent, 0o777);
    expect(privateCacheDir(join(openParent, "latchkey"))).toBeNull();
  });

  it("refuses a path that is a file", async () => {
    await writeFile(join(root, "file"), "");
    expect(privateCacheDir(join(root, "file"))).toBeNull();
  });
});

describe.skipIf(process.platform === "win32")("codeCacheDir", () => {
  it("is $XDG_CACHE_HOME/latchkey, else ~/.cache/latchkey, and nothing when switched off", () => {
    expect(codeCacheDir({ XDG_CACHE_HOME: join(root, "xdg"), HOME: join(root, "home") })).toBe(
      join(root, "xdg", "latchkey"),
    );
    // The XDG specification says a relative path is invalid and must be ignored.
    expect(codeCacheDir({ XDG_CACHE_HOME: "relative", HOME: join(root, "home") })).toBe(
      join(root, "home", ".cache", "latchkey"),
    );
    expect(codeCacheDir({ HOME: join(root, "home"), NODE_DISABLE_COMPILE_CACHE: "1" })).toBeNull();
  });
});

describe("loadCachedScript", () => {
  const location = (key = "k1"): CacheLocation => ({ dir: root, prefix: "fast-test-", key });

  it("runs the bundle, passes it the import function, and keeps no cache without a location", async () => {
    const loaded = loadCachedScript<Bundle>(await bundle(), null, (name) =>
      Promise.resolve(`imported ${name}`),
    );
    expect(loaded.cache).toBe("off");
    expect(loaded.exports.large(3)).toBeTypeOf("number");
    await expect(loaded.exports.loadExternal("x")).resolves.toBe("imported x");
    loaded.save();
    expect((await readdir(root)).filter((name) => name.startsWith("fast-"))).toEqual([]);
  });

  it("saves a 0600 cache once, and the next load uses it", async () => {
    const file = await bundle();
    const first = loadCachedScript<Bundle>(file, location(), noImport);
    expect(first.cache).toBe("missing");
    const answer = first.exports.large(5);
    first.save();
    const cacheFile = join(root, "fast-test-k1");
    const written = await stat(cacheFile);
    expect(written.mode & 0o777).toBe(0o600);
    first.save();
    expect((await stat(cacheFile)).mtimeMs).toBe(written.mtimeMs);

    const second = loadCachedScript<Bundle>(file, location(), noImport);
    expect(second.cache).toBe("accepted");
    expect(second.exports.large(5)).toBe(answer);
    second.save();
    expect((await stat(cacheFile)).ino).toBe(written.ino);
  });

  it("takes the cache after the run, so it holds the functions the run compiled", async () => {
    const file = await bundle();
    const idle = loadCachedScript<Bundle>(file, { dir: root, prefix: "idle-", key: "k" }, noImport);
    idle.save();
    const busy = loadCachedScript<Bundle>(file, { dir: root, prefix: "busy-", key: "k" }, noImport);
    busy.exports.large(1);
    busy.save();
    const idleSize = (await stat(join(root, "idle-k"))).size;
    const busySize = (await stat(join(root, "busy-k"))).size;
    // `large` is compiled lazily, on its first call: only the second cache has its bytecode.
    expect(busySize).toBeGreaterThan(idleSize + 1000);
  });

  it("replaces a damaged cache, and prunes the caches of other builds once a day old", async () => {
    const file = await bundle();
    await writeFile(join(root, "fast-test-k1"), Buffer.alloc(4096, 0x5a), { mode: 0o600 });
    await writeFile(join(root, "fast-test-old-build"), "stale", { mode: 0o600 });
    const longAgo = new Date(Date.now() - PRUNE_AFTER_MS - 60_000);
    await utimes(join(root, "fast-test-old-build"), longAgo, longAgo);
    // Another installed version, still in use: it keeps its cache.
    await writeFile(join(root, "fast-test-other-version"), "recent", { mode: 0o600 });
    await writeFile(join(root, "fast-other-k1"), "another command's", { mode: 0o600 });
    await utimes(join(root, "fast-other-k1"), longAgo, longAgo);
    const damaged = loadCachedScript<Bundle>(file, location(), noImport);
    expect(damaged.cache).toBe("rejected");
    damaged.save();
    expect((await readdir(root)).sort()).toEqual([
      "bundle.cjs",
      "fast-other-k1",
      "fast-test-k1",
      "fast-test-other-version",
    ]);
    expect(loadCachedScript<Bundle>(file, location(), noImport).cache).toBe("accepted");
  });

  it("never reads or writes through a symlink", async () => {
    const file = await bundle();
    const elsewhere = join(root, "elsewhere");
    const warm = loadCachedScript<Bundle>(file, { dir: root, prefix: "warm-", key: "k" }, noImport);
    warm.save();
    await writeFile(elsewhere, await readFile(join(root, "warm-k")));
    await symlink(elsewhere, join(root, "fast-test-k1"));
    const loaded = loadCachedScript<Bundle>(file, location(), noImport);
    expect(loaded.cache).toBe("missing");
    loaded.save();
    expect((await lstat(join(root, "fast-test-k1"))).isSymbolicLink()).toBe(false);
    expect(await readFile(elsewhere)).toEqual(await readFile(join(root, "warm-k")));
  });

  it("leaves no temporary file behind when the cache cannot be written", async () => {
    const file = await bundle();
    const readOnly = join(root, "ro");
    await mkdir(readOnly, { mode: 0o500 });
    const loaded = loadCachedScript<Bundle>(file, { dir: readOnly, prefix: "fast-", key: "k" }, noImport);
    expect(() => loaded.save()).not.toThrow();
    // Root may write anyway; whatever happened, nothing half-written is left.
    expect((await readdir(readOnly)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  });
});
