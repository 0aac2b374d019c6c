/** The webhook address rules (domain/shared/ip_address.ts): which IPv4 and IPv6 addresses are refused. */
import assert from "node:assert/strict";
import {
  inCidrs,
  isIpLiteral,
  parseCidr,
  parseIpv4,
  parseIpv6,
  reservedReason,
} from "../../domain/shared/ip_address.ts";

const refused = (ip: string) =>
  assert.notEqual(reservedReason(ip), null, `${ip} should be refused`);
const allowed = (ip: string) =>
  assert.equal(reservedReason(ip), null, `${ip} should be allowed: ${reservedReason(ip)}`);

Deno.test("ip rules: reserved IPv4 ranges are refused, at both ends of each range", () => {
  for (
    const ip of [
      "0.0.0.0",
      "0.255.255.255",
      "10.0.0.1",
      "10.255.255.255",
      "100.64.0.0",
      "100.127.255.255",
      "127.0.0.1",
      "127.255.255.254",
      "169.254.169.254",
      "172.16.0.1",
      "172.31.255.255",
      "192.0.0.8",
      "192.0.2.1",
      "192.88.99.1",
      "192.168.0.1",
      "192.168.255.255",
      "198.18.0.1",
      "198.19.255.255",
      "198.51.100.7",
      "203.0.113.9",
      "224.0.0.1",
      "239.255.255.250",
      "240.0.0.1",
      "255.255.255.255",
    ]
  ) refused(ip);
});

Deno.test("ip rules: public IPv4 next to the reserved ranges is allowed", () => {
  for (
    const ip of [
      "1.1.1.1",
      "8.8.8.8",
      "9.255.255.255",
      "11.0.0.0",
      "100.63.255.255",
      "100.128.0.0",
      "126.255.255.255",
      "128.0.0.0",
      "169.253.255.255",
      "172.15.255.255",
      "172.32.0.0",
      "192.167.255.255",
      "192.169.0.0",
      "198.17.255.255",
      "198.20.0.0",
      "223.255.255.255",
    ]
  ) allowed(ip);
});

Deno.test("ip rules: reserved IPv6 ranges are refused, with or without brackets", () => {
  for (
    const ip of [
      "::",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "[::ffff:a00:1]",
      "::ffff:8.8.8.8",
      "::127.0.0.1",
      // IPv4-translated (RFC 2765): 127.0.0.1 and 169.254.169.254, and a public one too.
      "::ffff:0:7f00:1",
      "[::ffff:0:a9fe:a9fe]",
      "::ffff:0:127.0.0.1",
      "::ffff:0:808:808",
      "64:ff9b:1::1",
      "100::1",
      "2001::1",
      "2001:db8::1",
      "3fff::1",
      "fc00::1",
      "fd12:3456::1",
      "fe80::1",
      "febf:ffff::1",
      "fec0::1",
      "ff02::1",
    ]
  ) refused(ip);
});

Deno.test("ip rules: NAT64 and 6to4 are judged by the IPv4 address they carry", () => {
  refused("64:ff9b::10.0.0.1");
  refused("64:ff9b::a9fe:a9fe");
  allowed("64:ff9b::8.8.8.8");
  refused("2002:7f00:1::1");
  refused("2002:c0a8:101::1");
  allowed("2002:808:808::1");
});

Deno.test("ip rules: an ISATAP interface id is judged by the IPv4 address it carries", () => {
  refused("2606:4700::5efe:7f00:1");
  refused("2606:4700::200:5efe:a9fe:a9fe");
  refused("2606:4700::5efe:192.168.0.1");
  allowed("2606:4700::5efe:808:808");
});

Deno.test("ip rules: public IPv6 is allowed", () => {
  for (const ip of ["2606:4700:4700::1111", "2a00:1450:4001::200e", "[2001:4860:4860::8888]"]) {
    allowed(ip);
  }
});

Deno.test("ip rules: text that is not an address is refused", () => {
  for (
    const text of [
      "",
      "localhost",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "256.1.1.1",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "::g",
      "12345::",
      "fe80::1%eth0",
      "1.2.3.4::",
    ]
  ) {
    assert.equal(reservedReason(text), "not an IP address", text);
    assert.equal(isIpLiteral(text), false, text);
  }
});

Deno.test("ip rules: parsers", () => {
  assert.equal(parseIpv4("192.168.1.2"), 0xc0a80102n);
  assert.equal(parseIpv6("::1"), 1n);
  assert.equal(parseIpv6("1::"), 1n << 112n);
  assert.equal(parseIpv6("::ffff:1.2.3.4"), 0xffff_0102_0304n);
  assert.equal(parseIpv6("1:2:3:4:5:6:7:8"), 0x0001_0002_0003_0004_0005_0006_0007_0008n);
  assert.equal(parseIpv6("1:2:3:4:5:6:7::"), 0x0001_0002_0003_0004_0005_0006_0007_0000n);
  assert.equal(parseIpv6("1:2:3:4:5:6:7:8::"), null);
  assert.ok(isIpLiteral("[::1]"));
  assert.ok(isIpLiteral("8.8.8.8"));
});

Deno.test("cidr: blocks of either family, single addresses, and what is not a block", () => {
  const blocks = ["10.0.0.0/8", "192.168.1.7", "fd00::/8", "[2001:db8::1]"].map((t) =>
    parseCidr(t)!
  );
  assert.ok(blocks.every(Boolean));
  for (const ip of ["10.0.0.1", "10.255.255.255", "192.168.1.7", "fd12::1", "2001:db8::1"]) {
    assert.ok(inCidrs(ip, blocks), ip);
  }
  assert.ok(inCidrs("::ffff:10.1.2.3", blocks), "an IPv4-mapped peer counts as its IPv4");
  for (const ip of ["11.0.0.1", "192.168.1.8", "fe80::1", "2001:db8::2", "not an ip"]) {
    assert.ok(!inCidrs(ip, blocks), ip);
  }
  for (
    const text of ["10.0.0.0/33", "fd00::/129", "10.0.0.0/8/1", "10.0.0/8", "host", "10.0.0.0/x"]
  ) {
    assert.equal(parseCidr(text), null, text);
  }
});
