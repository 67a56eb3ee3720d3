/** Whether a host name or address is this machine's loopback, for the places where plain http or no TLS is allowed. */
import { isIP } from "node:net";

/**
 * True for `localhost`, an IPv4 address in 127.0.0.0/8 and `::1` (bracketed or not, as URL.hostname gives it).
 * Nothing that reaches it leaves the machine, so the server lets such a host go without TLS.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

/**
 * Whether cookies the server sets for pages of `publicUrl` are Secure: always, except for a loopback http server
 * (a browser drops a Secure cookie that plain http sets). An unknown URL (not listening yet) counts as https.
 */
export function secureCookies(publicUrl: string | undefined): boolean {
  if (publicUrl === undefined) return true;
  const url = new URL(publicUrl);
  return !(url.protocol === "http:" && isLoopbackHost(url.hostname));
}
