import { describe, expect, it } from "vitest";
import { createTestContext } from "../test/support/context.js";
import { readSecretInput } from "./input.js";

function atPrompt(answer: string, confirmed: boolean) {
  const asked: string[] = [];
  const ctx = createTestContext({
    stdin: { isTTY: true, readAll: () => Promise.reject(new Error("must not read stdin at a terminal")) },
    stderrTTY: true,
    prompts: {
      secret: () => Promise.resolve(answer),
      confirm: (message, initial) => {
        asked.push(`${message} [default ${String(initial)}]`);
        return Promise.resolve(confirmed);
      },
    },
  });
  return { ctx, asked };
}

function piped(text: string) {
  return createTestContext({ stdin: { isTTY: false, readAll: () => Promise.resolve(Buffer.from(text)) } });
}

describe("readSecretInput", () => {
  it("refuses an empty answer at the prompt unless it is confirmed; the question defaults to no", async () => {
    const declined = atPrompt("", false);
    await expect(
      readSecretInput(declined.ctx, "Value for K", { confirmEmpty: "Store K with an empty value?" }),
    ).rejects.toMatchObject({ code: "LK_INPUT_EMPTY" });
    expect(declined.asked).toEqual(["Store K with an empty value? [default false]"]);

    const confirmed = atPrompt("", true);
    await expect(readSecretInput(confirmed.ctx, "Value for K", { confirmEmpty: "Empty?" })).resolves.toBe("");
  });

  it("refuses an empty answer without asking when there is no question, and takes it with allowEmpty", async () => {
    const plain = atPrompt("", true);
    await expect(readSecretInput(plain.ctx, "Password")).rejects.toMatchObject({ code: "LK_INPUT_EMPTY" });
    expect(plain.asked).toEqual([]);
    const allowed = atPrompt("", false);
    await expect(readSecretInput(allowed.ctx, "Value", { allowEmpty: true })).resolves.toBe("");
    expect(allowed.asked).toEqual([]);
  });

  it("returns a typed answer as it is, without asking", async () => {
    const typed = atPrompt("s3cret", false);
    await expect(readSecretInput(typed.ctx, "Value", { confirmEmpty: "Empty?" })).resolves.toBe("s3cret");
    expect(typed.asked).toEqual([]);
  });

  it("reads stdin without its trailing newline; empty stdin only with allowEmpty", async () => {
    await expect(readSecretInput(piped("value\n"), "Value")).resolves.toBe("value");
    await expect(readSecretInput(piped("\n"), "Value")).rejects.toMatchObject({ code: "LK_INPUT_EMPTY" });
    await expect(readSecretInput(piped(""), "Value", { allowEmpty: true })).resolves.toBe("");
  });
});
