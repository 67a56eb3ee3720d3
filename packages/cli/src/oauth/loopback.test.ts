import { request } from "node:http";
import { connect } from "node:net";
import { networkInterfaces } from "node:os";
import { describe, expect, it } from "vitest";
import { LatchkeyError } from "@latchkey/core";
import { startLoopbackListener } from "./loopback.js";

async function get(url: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const response = await fetch(url, { redirect: "manual" });
  return {
    status: response.status,
    body: await response.text(),
    headers: Object.fromEntries(response.headers),
  };
}

async function errorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return error instanceof LatchkeyError ? error.code : `not a LatchkeyError: ${String(error)}`;
  }
  return "resolved";
}

function connectRefused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
    // A firewall that drops instead of refusing also means "not reachable".
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve(true);
    });
  });
}

/** Sends one raw request line (for request targets fetch would normalise) and returns the raw answer. */
function rawRequest(origin: string, requestLine: string): Promise<string> {
  const { port } = new URL(origin);
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: Number(port) });
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("close", () => resolve(data));
    socket.on("error", () => resolve(data));
    socket.write(`${requestLine}\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}

describe("startLoopbackListener", () => {
  it("binds 127.0.0.1 on an OS-assigned port and resolves with the callback URL", async () => {
    const listener = await startLoopbackListener({ expectedState: "s-123" });
    const redirect = new URL(listener.redirectUri);
    expect(redirect.protocol).toBe("http:");
    expect(redirect.hostname).toBe("127.0.0.1");
    expect(Number(redirect.port)).toBeGreaterThan(0);
    expect(redirect.pathname).toBe("/callback");

    const page = await get(`${listener.redirectUri}?code=the-code&state=s-123&iss=x`);
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.body).toContain("You can close this tab");
    expect(page.body).not.toContain("the-code");
    const url = await listener.callback;
    expect(url.searchParams.get("code")).toBe("the-code");
    expect(url.searchParams.get("state")).toBe("s-123");
    expect(url.origin + url.pathname).toBe(listener.redirectUri);
    // One-shot: the port no longer accepts connections.
    expect(await connectRefused("127.0.0.1", Number(redirect.port))).toBe(true);
  });

  it("ignores other paths and methods, then still accepts the real callback", async () => {
    const listener = await startLoopbackListener({ expectedState: "abc" });
    const origin = new URL(listener.redirectUri).origin;
    expect((await get(`${origin}/favicon.ico`)).status).toBe(404);
    expect((await get(`${origin}/callback/extra?code=evil&state=abc`)).status).toBe(404);
    const otherOrigin = await rawRequest(origin, "GET //evil.example/callback?code=evil&state=abc HTTP/1.1");
    expect(otherOrigin).toMatch(/^HTTP\/1\.1 404/);
    const post = await fetch(`${listener.redirectUri}?code=evil&state=abc`, { method: "POST" });
    expect(post.status).toBe(404);
    await get(`${listener.redirectUri}?code=good&state=abc`);
    expect((await listener.callback).searchParams.get("code")).toBe("good");
  });

  it("accepts exactly one callback: a second request on a kept-alive connection cannot feed it", async () => {
    const listener = await startLoopbackListener({ expectedState: "one" });
    const { port } = new URL(listener.redirectUri);
    // Two requests pipelined on one socket: the first settles the flow, the second must not replace its code.
    const raw = await new Promise<string>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port: Number(port) });
      let data = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk: string) => (data += chunk));
      socket.on("close", () => resolve(data));
      socket.on("error", () => resolve(data));
      socket.write(
        "GET /callback?code=first&state=one HTTP/1.1\r\nHost: x\r\n\r\n" +
          "GET /callback?code=second&state=one HTTP/1.1\r\nHost: x\r\n\r\n",
      );
    });
    expect(raw).toContain("HTTP/1.1 200");
    expect((await listener.callback).searchParams.get("code")).toBe("first");
    expect(raw).not.toContain("second");
  });

  it("ends the flow on a wrong state with LK_OAUTH_STATE_MISMATCH", async () => {
    const listener = await startLoopbackListener({ expectedState: "expected" });
    const page = await get(`${listener.redirectUri}?code=c&state=forged`);
    expect(page.status).toBe(400);
    expect(await errorCode(listener.callback)).toBe("LK_OAUTH_STATE_MISMATCH");
  });

  it("ends the flow on a missing state with LK_OAUTH_STATE_MISMATCH", async () => {
    const listener = await startLoopbackListener({ expectedState: "expected" });
    await get(`${listener.redirectUri}?code=c`);
    expect(await errorCode(listener.callback)).toBe("LK_OAUTH_STATE_MISMATCH");
  });

  it("ends the flow on an error callback with LK_OAUTH_DENIED naming the provider's error", async () => {
    const listener = await startLoopbackListener({ expectedState: "st" });
    const page = await get(
      `${listener.redirectUri}?error=access_denied&error_description=${encodeURIComponent("user said\nno")}&state=st`,
    );
    expect(page.status).toBe(400);
    expect(page.body).not.toContain("user said");
    const error = await listener.callback.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LatchkeyError);
    expect((error as LatchkeyError).code).toBe("LK_OAUTH_DENIED");
    expect((error as LatchkeyError).message).toBe(
      "The identity provider refused the login: access_denied (user said no).",
    );
  });

  it("times out with LK_OAUTH_TIMEOUT and closes the port", async () => {
    const listener = await startLoopbackListener({ expectedState: "st", timeoutMs: 20 });
    expect(await errorCode(listener.callback)).toBe("LK_OAUTH_TIMEOUT");
    const { port } = new URL(listener.redirectUri);
    expect(await connectRefused("127.0.0.1", Number(port))).toBe(true);
  });

  it("refuses to bind anything but a loopback address", async () => {
    for (const host of ["0.0.0.0", "::", "localhost", "192.168.1.10"]) {
      expect(await errorCode(startLoopbackListener({ expectedState: "s", host }))).toBe("LK_CONFIG_INVALID");
    }
  });

  it("is not reachable on the machine's other addresses", async () => {
    const listener = await startLoopbackListener({ expectedState: "s" });
    const { port } = new URL(listener.redirectUri);
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && !a.internal && a.family === "IPv4")
      .map((a) => a!.address);
    for (const address of external) expect(await connectRefused(address, Number(port))).toBe(true);
    // And it is reachable on loopback, so the refusals above are about the address, not a dead listener.
    const reachable = await new Promise<number>((resolve) => {
      request(`${listener.redirectUri}?nothing=1`, { method: "HEAD" }, (res) =>
        resolve(res.statusCode ?? 0),
      ).end();
    });
    expect(reachable).toBe(404);
    await listener.close();
    expect(await errorCode(listener.callback)).toBe("LK_OAUTH_TIMEOUT");
  });
});
