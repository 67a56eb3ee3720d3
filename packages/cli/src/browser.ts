// Opening the user's browser for a login page (npm web login, SSO). `$BROWSER` wins, as it does for git and
// Python's webbrowser; otherwise the desktop's opener. Failing to open is never fatal: every caller has already
// printed the URL.
import type { Context } from "./context.js";

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
