/**
 * Which IP addresses a webhook may be delivered to: only globally routable unicast ones. Every
 * private, loopback, link-local, shared, multicast, documentation or otherwise reserved range
 * of the IANA special-purpose registries is refused, so a webhook URL cannot make Steward call
 * into its own network (SSRF). IPv6 forms that carry an IPv4 address (NAT64, 6to4, an ISATAP
 * interface id) are judged by the address they carry; IPv4-mapped, IPv4-compatible and
 * IPv4-translated ones (which a host may route straight to the IPv4 address) are refused
 * outright.
 */

/** A CIDR range over an address as a bigint (32 bits for IPv4, 128 for IPv6). */
interface Range {
  base: bigint;
  bits: number;
  why: string;
}

const v4 = (cidr: string, why: string): Range => {
  const [addr, bits] = cidr.split("/");
  return { base: parseIpv4(addr)!, bits: Number(bits), why };
};
const v6 = (cidr: string, why: string): Range => {
  const [addr, bits] = cidr.split("/");
  return { base: parseIpv6(addr)!, bits: Number(bits), why };
};

const IPV4_RESERVED: Range[] = [
  v4("0.0.0.0/8", "this network"),
  v4("10.0.0.0/8", "private"),
  v4("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
  v4("127.0.0.0/8", "loopback"),
  v4("169.254.0.0/16", "link-local"),
  v4("172.16.0.0/12", "private"),
  v4("192.0.0.0/24", "IETF protocol assignments"),
  v4("192.0.2.0/24", "documentation"),
  v4("192.88.99.0/24", "6to4 relay anycast"),
  v4("192.168.0.0/16", "private"),
  v4("198.18.0.0/15", "benchmarking"),
  v4("198.51.100.0/24", "documentation"),
  v4("203.0.113.0/24", "documentation"),
  v4("224.0.0.0/4", "multicast"),
  v4("240.0.0.0/4", "reserved"),
];

const IPV6_RESERVED: Range[] = [
  v6("::/128", "unspecified"),
  v6("::1/128", "loopback"),
  v6("::ffff:0:0/96", "IPv4-mapped"),
  v6("::ffff:0:0:0/96", "IPv4-translated"),
  v6("::/96", "IPv4-compatible"),
  v6("64:ff9b:1::/48", "local-use NAT64"),
  v6("100::/64", "discard-only"),
  v6("2001::/23", "IETF protocol assignments"),
  v6("2001:db8::/32", "documentation"),
  v6("3fff::/20", "documentation"),
  v6("5f00::/16", "segment routing"),
  v6("fc00::/7", "unique local (private)"),
  v6("fe80::/10", "link-local"),
  v6("fec0::/10", "site-local"),
  v6("ff00::/8", "multicast"),
];

/** IPv6 prefixes whose address carries an IPv4 one: the prefix, and the bit it starts at. */
const IPV6_CARRIERS: { range: Range; shift: bigint }[] = [
  { range: v6("64:ff9b::/96", "NAT64"), shift: 0n },
  { range: v6("2002::/16", "6to4"), shift: 80n },
];

const inRange = (addr: bigint, width: number, r: { base: bigint; bits: number }) => {
  const shift = BigInt(width - r.bits);
  return (addr >> shift) === (r.base >> shift);
};

/** Dotted-quad IPv4 (four decimal parts, no leading zeros) as a 32-bit number, or null. */
export function parseIpv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let out = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return null;
    out = (out << 8n) | BigInt(p);
  }
  return out;
}

/** IPv6 text (with `::` and an optional dotted IPv4 tail, no zone) as a 128-bit number, or null. */
export function parseIpv6(text: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string): number[] | null => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (const [i, p] of parts.entries()) {
      if (i === parts.length - 1 && p.includes(".")) {
        const tail = parseIpv4(p);
        if (tail === null) return null;
        out.push(Number(tail >> 16n), Number(tail & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  // A dotted tail may only end the address.
  if (halves.length === 2 && halves[0].includes(".")) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  let out = 0n;
  for (const g of [...head, ...Array(missing).fill(0), ...tail]) out = (out << 16n) | BigInt(g);
  return out;
}

/**
 * Why `ip` (an IPv4 or IPv6 address as text, IPv6 optionally in brackets) may not be a webhook
 * target, or null when it is a public address. Text that is not an address is refused too.
 */
export function reservedReason(ip: string): string | null {
  const text = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  const four = parseIpv4(text);
  if (four !== null) return IPV4_RESERVED.find((r) => inRange(four, 32, r))?.why ?? null;
  const six = parseIpv6(text);
  if (six === null) return "not an IP address";
  const reserved = IPV6_RESERVED.find((r) => inRange(six, 128, r));
  if (reserved) return reserved.why;
  for (const { range, shift } of IPV6_CARRIERS) {
    if (inRange(six, 128, range)) return carriedReason(range.why, (six >> shift) & 0xffff_ffffn);
  }
  // ISATAP: any prefix, with an interface id of 0000:5efe or 0200:5efe and the IPv4 address.
  if (((six >> 32n) & 0xfdff_ffffn) === 0x5efen) return carriedReason("ISATAP", six & 0xffff_ffffn);
  return null;
}

function carriedReason(form: string, carried: bigint): string | null {
  const why = IPV4_RESERVED.find((r) => inRange(carried, 32, r))?.why;
  return why ? `${form} form of a ${why} IPv4` : null;
}

/** A block of addresses of one family: `10.0.0.0/8`, `fd00::/8`, or one address. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly base: bigint;
  readonly bits: number;
}

const bare = (text: string) =>
  text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;

/** Parses `addr` or `addr/bits`; null when it is neither. */
export function parseCidr(text: string): Cidr | null {
  const [addr, length, ...rest] = text.trim().split("/");
  if (rest.length) return null;
  const four = parseIpv4(addr);
  const base = four ?? parseIpv6(bare(addr));
  if (base === null) return null;
  const width = four !== null ? 32 : 128;
  const bits = length === undefined ? width : /^[0-9]{1,3}$/.test(length) ? Number(length) : -1;
  if (bits < 0 || bits > width) return null;
  return { family: four !== null ? 4 : 6, base, bits };
}

/** Whether `ip` lies in one of `blocks` (an IPv4-mapped IPv6 address counts as its IPv4). */
export function inCidrs(ip: string, blocks: readonly Cidr[]): boolean {
  const text = bare(ip);
  let four = parseIpv4(text);
  const six = four === null ? parseIpv6(text) : null;
  if (six !== null && six >> 32n === 0xffffn) four = six & 0xffff_ffffn;
  return blocks.some((b) =>
    b.family === 4 ? four !== null && inRange(four, 32, b) : six !== null && inRange(six, 128, b)
  );
}

/** True when `text` is an IP literal (not a host name). */
export const isIpLiteral = (text: string) => {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  return parseIpv4(bare) !== null || parseIpv6(bare) !== null;
};

/** An address as text in its canonical form: dotted IPv4, or RFC 5952 IPv6 (lowercase, `::`). */
function formatAddress(family: 4 | 6, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join(".");
  }
  const groups = Array.from(
    { length: 8 },
    (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn),
  );
  // The longest run of two or more zero groups (the first of equals) becomes `::`.
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j > i ? j : i + 1;
  }
  const hex = (from: number, to: number) => groups.slice(from, to).map((g) => g.toString(16));
  if (best.at < 0) return hex(0, 8).join(":");
  return `${hex(0, best.at).join(":")}::${hex(best.at + best.length, 8).join(":")}`;
}

/**
 * `ip` in canonical form (an IPv4-mapped IPv6 address as its IPv4), so one client has one
 * spelling; null when it is not an address.
 */
export function canonicalIp(ip: string): string | null {
  const c = parseCidr(ip);
  if (!c || c.bits !== (c.family === 4 ? 32 : 128)) return null;
  if (c.family === 6 && c.base >> 32n === 0xffffn) return formatAddress(4, c.base & 0xffff_ffffn);
  return formatAddress(c.family, c.base);
}

/** A block with its host bits cleared, as text: `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7/32`. */
export function formatCidr(c: Cidr): string {
  const width = c.family === 4 ? 32 : 128;
  const shift = BigInt(width - c.bits);
  return `${formatAddress(c.family, (c.base >> shift) << shift)}/${c.bits}`;
}
