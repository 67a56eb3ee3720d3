/**
 * Copying a vault value: the async clipboard API, then the clipboard emptied after {@link CLEAR_AFTER_MS}. Browsers
 * let a page write the clipboard only while it has focus, so a clear that falls due while the page is in the
 * background waits for its next focus. The clipboard is not read first (that asks for a permission): what the
 * user copied elsewhere in the meantime is cleared too, as password managers do.
 */

/** How long a copied value stays on the clipboard. */
export const CLEAR_AFTER_MS = 30_000;

/** What the clipboard code needs of the page (the browser's own, unless a test hands in its own). */
export interface ClipboardEnv {
  writeText(text: string): Promise<void>;
  hasFocus(): boolean;
  onFocusOnce(listener: () => void): void;
  setTimeout(callback: () => void, ms: number): unknown;
}

function browserEnv(): ClipboardEnv {
  return {
    writeText: (text) => navigator.clipboard.writeText(text),
    hasFocus: () => document.hasFocus(),
    onFocusOnce: (listener) => addEventListener("focus", listener, { once: true }),
    setTimeout: (callback, ms) => setTimeout(callback, ms),
  };
}

let clearDue: (() => void) | null = null;

/**
 * Copies `value`, and empties the clipboard CLEAR_AFTER_MS later (a later copy moves that time). Rejects when the
 * browser refuses the write (no focus, no permission).
 */
export async function copyValue(value: string, env: ClipboardEnv = browserEnv()): Promise<void> {
  await env.writeText(value);
  const clear = (): void => {
    if (clearDue !== clear) return;
    if (!env.hasFocus()) {
      env.onFocusOnce(clear);
      return;
    }
    clearDue = null;
    env.writeText("").catch(() => undefined);
  };
  clearDue = clear;
  env.setTimeout(clear, CLEAR_AFTER_MS);
}
