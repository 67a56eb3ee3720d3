/**
 * Copying a vault value: the async clipboard API, then the clipboard emptied after {@link CLEAR_AFTER_MS}. Browsers
 * let a page write the clipboard only while it has focus, so a clear that falls due while the page is in the
 * background waits for its next focus. Where the page may read the clipboard without asking (the clipboard-read
 * permission already granted), the clear empties it only if it still holds the value, so what the user copied
 * elsewhere meanwhile stays; where it may not, the page cannot tell and empties it anyway (reading would raise a
 * permission prompt 30 seconds after a click, and leaving a secret behind is the worse mistake).
 */

/** How long a copied value stays on the clipboard. */
export const CLEAR_AFTER_MS = 30_000;

/** What the clipboard code needs of the page (the browser's own, unless a test hands in its own). */
export interface ClipboardEnv {
  writeText(text: string): Promise<void>;
  /** The clipboard's text when the page may read it without a prompt; null when it may not, or the read failed. */
  readTextIfAllowed(): Promise<string | null>;
  hasFocus(): boolean;
  onFocusOnce(listener: () => void): void;
  setTimeout(callback: () => void, ms: number): unknown;
}

async function readTextIfAllowed(): Promise<string | null> {
  try {
    // "clipboard-read" is Chromium's name; browsers without it throw, and the page then cannot tell.
    const permission = await navigator.permissions.query({ name: "clipboard-read" as PermissionName });
    if (permission.state !== "granted") return null;
    return await navigator.clipboard.readText();
  } catch {
    return null;
  }
}

function browserEnv(): ClipboardEnv {
  return {
    writeText: (text) => navigator.clipboard.writeText(text),
    readTextIfAllowed,
    hasFocus: () => document.hasFocus(),
    onFocusOnce: (listener) => addEventListener("focus", listener, { once: true }),
    setTimeout: (callback, ms) => setTimeout(callback, ms),
  };
}

let clearDue: (() => void) | null = null;

/**
 * Copies `value`, and empties the clipboard CLEAR_AFTER_MS later unless it is known to hold something else by then
 * (a later copy moves that time). Rejects when the browser refuses the write (no focus, no permission).
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
    env
      .readTextIfAllowed()
      .then((current) => (current === null || current === value ? env.writeText("") : undefined))
      .catch(() => undefined);
  };
  clearDue = clear;
  env.setTimeout(clear, CLEAR_AFTER_MS);
}
