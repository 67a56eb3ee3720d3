import { describe, expect, it } from "vitest";
import { limitAddress } from "./rate-limit.js";

describe("limitAddress", () => {
  it("counts IPv4 addresses as they are", () => {
    expect(limitAddress("203.0.113.7")).toBe("203.0.113.7");
  });

  it("counts an IPv6 address by its /64, however it is spelled", () => {
    for (const spelling of [
      "2001:db8:1:2::1",
      "2001:0db8:0001:0002:ffff:ffff:ffff:ffff",
      "2001:DB8:1:2:a:b:c:d",
      "2001:db8:1:2::192.0.2.1",
      "2001:db8:1:2::1%eth0",
    ])
      expect(limitAddress(spelling)).toBe("2001:db8:1:2::/64");
    expect(limitAddress("2001:db8:1:3::1")).toBe("2001:db8:1:3::/64");
    expect(limitAddress("::1")).toBe("0:0:0:0::/64");
    expect(limitAddress("::")).toBe("0:0:0:0::/64");
  });

  it("counts an IPv4-mapped IPv6 address as the IPv4 address", () => {
    expect(limitAddress("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(limitAddress("::ffff:cb00:7107")).toBe("203.0.113.7");
  });

  it("leaves anything that is not an IP address as it is", () => {
    expect(limitAddress("unknown")).toBe("unknown");
    expect(limitAddress("")).toBe("");
  });
});
