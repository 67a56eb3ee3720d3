import { describe, expect, it } from "vitest";
import { CLEAR_AFTER_MS, copyValue, type ClipboardEnv } from "./clipboard.js";

/** A clipboard the page may read (`readable`) or not, with timers and focus the test drives. */
function fakeEnv(readable = false) {
  const timers: { callback: () => void; ms: number }[] = [];
  const focusListeners: (() => void)[] = [];
  const state = { clipboard: "", focused: true, writes: 0 };
  const env: ClipboardEnv = {
    writeText: (text) => {
      state.clipboard = text;
      state.writes++;
      return Promise.resolve();
    },
    readTextIfAllowed: () => Promise.resolve(readable ? state.clipboard : null),
    hasFocus: () => state.focused,
    onFocusOnce: (listener) => void focusListeners.push(listener),
    setTimeout: (callback, ms) => void timers.push({ callback, ms }),
  };
  return { env, state, timers, focusListeners };
}

/** Lets the clear's read and write settle. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("copyValue", () => {
  it("copies, then empties the clipboard 30 seconds later", async () => {
    const { env, state, timers } = fakeEnv();
    await copyValue("s3cret", env);
    expect(state.clipboard).toBe("s3cret");
    expect(timers.map((t) => t.ms)).toEqual([CLEAR_AFTER_MS]);
    expect(CLEAR_AFTER_MS).toBe(30_000);
    timers[0]!.callback();
    await settle();
    expect(state.clipboard).toBe("");
  });

  it("waits for the page's focus when the clear falls due in the background", async () => {
    const { env, state, timers, focusListeners } = fakeEnv();
    await copyValue("s3cret", env);
    state.focused = false;
    timers[0]!.callback();
    await settle();
    expect(state.clipboard).toBe("s3cret");
    state.focused = true;
    focusListeners[0]!();
    await settle();
    expect(state.clipboard).toBe("");
  });

  it("lets a later copy move the clear: the first one's timer does nothing", async () => {
    const { env, state, timers } = fakeEnv();
    await copyValue("first", env);
    await copyValue("second", env);
    timers[0]!.callback();
    await settle();
    expect(state.clipboard).toBe("second");
    timers[1]!.callback();
    await settle();
    expect(state.clipboard).toBe("");
  });

  it("leaves what the user copied elsewhere meanwhile, when the page may read the clipboard", async () => {
    const { env, state, timers } = fakeEnv(true);
    await copyValue("s3cret", env);
    state.clipboard = "a line of the user's notes";
    const writes = state.writes;
    timers[0]!.callback();
    await settle();
    expect(state.clipboard).toBe("a line of the user's notes");
    expect(state.writes).toBe(writes);
  });

  it("empties a readable clipboard that still holds the value", async () => {
    const { env, state, timers } = fakeEnv(true);
    await copyValue("s3cret", env);
    timers[0]!.callback();
    await settle();
    expect(state.clipboard).toBe("");
  });
});
