import { describe, expect, it } from "vitest";
import { describeSendError, describeSmtpUrl, parseSmtpConfig } from "./smtp.js";

const PASSWORD = "hunter2-Pa55word";

describe("SMTP_URL", () => {
  it("is optional: without it notices stay queued", () => {
    expect(parseSmtpConfig({}, undefined)).toBeUndefined();
    expect(parseSmtpConfig({ SMTP_URL: "" }, undefined)).toBeUndefined();
  });

  it("takes smtp:// and smtps:// URLs, with a From address from SMTP_FROM or PUBLIC_URL's host", () => {
    const url = `smtps://notices%40example.com:${PASSWORD}@mail.example.com:465`;
    expect(parseSmtpConfig({ SMTP_URL: url }, "https://latchkey.example.com")).toEqual({
      url,
      from: "Latchkey <latchkey@latchkey.example.com>",
    });
    expect(
      parseSmtpConfig({ SMTP_URL: "smtp://127.0.0.1:2525", SMTP_FROM: "Ops <ops@example.com>" }, undefined),
    ).toEqual({ url: "smtp://127.0.0.1:2525", from: "Ops <ops@example.com>" });
    expect(parseSmtpConfig({ SMTP_URL: "smtp://127.0.0.1" }, undefined)?.from).toBe(
      "Latchkey <latchkey@localhost>",
    );
  });

  it.each([
    `https://user:${PASSWORD}@mail.example.com`,
    `smtp:${PASSWORD}`,
    `not a url ${PASSWORD}`,
    `smtp://user:${PASSWORD}@mail.example.com/?logger=true`,
    `smtp://user:${PASSWORD}@mail.example.com/?debug=true`,
  ])("refuses %s without quoting it", (url) => {
    let error: unknown;
    try {
      parseSmtpConfig({ SMTP_URL: url }, undefined);
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: "LK_CONFIG_INVALID" });
    expect(JSON.stringify(error) + String(error)).not.toContain(PASSWORD);
  });

  it("refuses an SMTP_FROM of several lines", () => {
    expect(() =>
      parseSmtpConfig({ SMTP_URL: "smtp://127.0.0.1", SMTP_FROM: "a@b\r\nBcc: eve@example.test" }, undefined),
    ).toThrow(expect.objectContaining({ code: "LK_CONFIG_INVALID" }));
  });

  it("is described in logs by scheme, host and port only", () => {
    expect(describeSmtpUrl(`smtps://u%40x:${PASSWORD}@mail.example.com:465/?pool=true`)).toBe(
      "smtps://mail.example.com:465",
    );
  });
});

describe("describeSendError", () => {
  it("keeps nodemailer's code and the SMTP reply code, never the reply text", () => {
    const err = Object.assign(new Error(`550 5.1.1 <x@example.test> ${PASSWORD}`), {
      code: "EENVELOPE",
      responseCode: 550,
      response: `550 ${PASSWORD}`,
    });
    const text = describeSendError(err);
    expect(text).toBe("EENVELOPE: the SMTP server refused the sender or the recipient (SMTP 550)");
    expect(describeSendError(Object.assign(new Error("x"), { code: "ECONNECTION" }))).toBe(
      "ECONNECTION: the SMTP server closed the connection",
    );
  });

  it("says little about what it does not know", () => {
    expect(describeSendError(new Error(PASSWORD))).toBe("the send failed");
    expect(describeSendError(Object.assign(new Error(), { code: PASSWORD }))).toBe("the send failed");
    expect(describeSendError(Object.assign(new Error(), { code: "EWHATEVER" }))).toBe(
      "EWHATEVER: the send failed",
    );
  });
});
