import { describe, expect, it } from "vitest";
import { CLEAR_AFTER_MS, copyValue, type ClipboardEnv } from "./clipboard.js";

function fakeEnv() {
  const timers: { callback: () => void; ms: number }[] = [];
  const focusListeners: (() => void)[] = [];
  const state = { clipboard: "", focused: true };
  const env: ClipboardEnv = {
    writeText: (text) => {
      state.clipboard = text;
      return Promise.resolve();
    },
    hasFocus: () => state.focused,
    onFocusOnce: (listener) => void focusListeners.push(listener),
    setTimeout: (callback, ms) => void timers.push({ callback, ms }),
  };
  return { env, state, timers, focusListeners };
}

describe("copyValue", () => {
  it("copies, then empties the clipboard 30 seconds later", async () => {
    const { env, state, timers } = fakeEnv();
    await copyValue("s3cret", env);
    expect(state.clipboard).toBe("s3cret");
    expect(timers.map((t) => t.ms)).toEqual([CLEAR_AFTER_MS]);
    expect(CLEAR_AFTER_MS).toBe(30_000);
    timers[0]!.callback();
    expect(state.clipboard).toBe("");
  });

  it("waits for the page's focus when the clear falls due in the background", async () => {
    const { env, state, timers, focusListeners } = fakeEnv();
    await copyValue("s3cret", env);
    state.focused = false;
    timers[0]!.callback();
    expect(state.clipboard).toBe("s3cret");
    state.focused = true;
    focusListeners[0]!();
    expect(state.clipboard).toBe("");
  });

  it("lets a later copy move the clear: the first one's timer does nothing", async () => {
    const { env, state, timers } = fakeEnv();
    await copyValue("first", env);
    await copyValue("second", env);
    timers[0]!.callback();
    expect(state.clipboard).toBe("second");
    timers[1]!.callback();
    expect(state.clipboard).toBe("");
  });
});
