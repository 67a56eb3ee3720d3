import { describe, expect, it } from "vitest";
import { escapeHtml, loginPage, totpPage } from "./pages.js";

describe("sign-in pages", () => {
  it("escapes every value they show", () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&</a>`)).toBe(
      "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
    const html = loginPage({
      uid: "u1",
      email: `"><script>alert(1)</script>`,
      error: "<b>bad</b>",
      signup: false,
      deviceFlow: false,
    });
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<b>bad</b>");
    expect(html).toContain("&quot;&gt;&lt;script&gt;");
  });

  it("never carries a password value, and links sign-up only when open", () => {
    const html = loginPage({ uid: "u1", signup: false, deviceFlow: false });
    expect(html).toMatch(/<input id="password" name="password" type="password" required/);
    expect(html).not.toMatch(/name="password"[^>]*value=/);
    expect(html).not.toContain("/signup");
    expect(loginPage({ uid: "u1", signup: true, deviceFlow: true })).toContain("/interaction/u1/signup");
    expect(totpPage({ uid: "u1", ticket: "t" })).not.toMatch(/name="code"[^>]*value=/);
  });
});
