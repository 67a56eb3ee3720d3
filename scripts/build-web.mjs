// Builds the browser dashboard (packages/web) into packages/web/dist: app-<hash>.js and app-<hash>.css (one
// bundle each, @latchkey/core included) and index.html naming them. No inline script or style anywhere: the
// server's Content-Security-Policy allows 'self' only. Prints the bundle's gzipped size and fails above the budget.
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";

/** The gzipped size the app's script and style sheet together may not exceed (issue: a small dashboard). */
export const WEB_BUDGET_BYTES = 150 * 1024;

/** Builds the dashboard under `root` (the repository, with a trailing slash); returns the gzipped size. */
export async function buildWeb(root) {
  const web = `${root}packages/web`;
  const dist = `${web}/dist`;
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  const result = await build({
    entryPoints: { app: `${web}/src/main.tsx` },
    outdir: dist,
    // Content-hashed names: the server lets browsers keep them for good, and index.html (never cached) names them.
    entryNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["chrome120", "firefox121", "safari17"],
    conditions: ["source"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    sourcemap: false,
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
  });
  const outputs = Object.keys(result.metafile.outputs).map((path) => path.slice(path.lastIndexOf("/") + 1));
  const script = outputs.find((name) => /^app-[A-Z0-9]+\.js$/.test(name));
  const style = outputs.find((name) => /^app-[A-Z0-9]+\.css$/.test(name));
  if (!script || !style)
    throw new Error(`build: the dashboard's outputs are not as expected: ${outputs.join(", ")}`);
  const html = (await readFile(`${web}/src/index.html`, "utf8"))
    .replace("/dashboard/app.js", `/dashboard/${script}`)
    .replace("/dashboard/app.css", `/dashboard/${style}`);
  if (!html.includes(script) || !html.includes(style))
    throw new Error(
      "build: packages/web/src/index.html no longer names /dashboard/app.js and /dashboard/app.css",
    );
  if (/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i.test(html))
    throw new Error("build: packages/web/src/index.html must hold no inline script, style or event handler");
  await writeFile(`${dist}/index.html`, html);

  let gzipped = 0;
  for (const name of [script, style])
    gzipped += gzipSync(await readFile(`${dist}/${name}`), { level: 9 }).length;
  const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
  process.stdout.write(
    `build: dashboard ${script} + ${style}: ${kib(gzipped)} gzipped (budget ${kib(WEB_BUDGET_BYTES)})\n`,
  );
  if (gzipped > WEB_BUDGET_BYTES)
    throw new Error(
      `build: the dashboard bundle is ${kib(gzipped)} gzipped, over its ${kib(WEB_BUDGET_BYTES)} budget`,
    );
  return gzipped;
}
