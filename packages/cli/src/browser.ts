// Opening the user's browser for a login page (npm web login, SSO). `$BROWSER` wins, as it does for git and
// Python's webbrowser; otherwise the desktop's opener. Failing to open is never fatal: every caller has already
// printed the URL.
import type { Context } from "./context.js";
import { findProgram } from "./run/replace.js";

/** Opens `url` in the browser; true when a program took it (exit 0). The URL goes in argv, never a secret. */
export async function openBrowser(ctx: Context, url: string, timeoutMs: number): Promise<boolean> {
  const candidates = ctx.env.BROWSER ? [ctx.env.BROWSER] : ["xdg-open", "open"];
  for (const program of candidates) {
    try {
      const result = await ctx.spawn(program, [url], { timeoutMs });
      return result.code === 0;
    } catch (error) {
      const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
      if (code !== "ENOENT") return false;
    }
  }
  return false;
}

/**
 * Why no browser can be opened here, or null when one may be. Only what is certain counts: without a display
 * (X11 or Wayland) or without xdg-open, a Linux or BSD machine has no browser to open, so a login that waits for
 * one would wait minutes for nothing (over SSH, in a container). BROWSER is trusted as given, and macOS and
 * Windows always have a desktop.
 */
export function browserUnavailable(ctx: Context): string | null {
  if (ctx.env.BROWSER) return null;
  if (ctx.platform.os === "darwin" || ctx.platform.os === "win32") return null;
  if (!ctx.env.DISPLAY && !ctx.env.WAYLAND_DISPLAY)
    return "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set) and BROWSER is not set";
  try {
    findProgram("xdg-open", ctx.env.PATH === undefined ? {} : { PATH: ctx.env.PATH }, ctx.cwd);
  } catch {
    return "xdg-open is not installed and BROWSER is not set";
  }
  return null;
}
