import { isIPv4, isIPv6 } from 'node:net';

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export type IpBytes = Uint8Array;

/**
 * Parses a textual IP address (IPv4 dotted quad, or IPv6 with optional embedded dotted quad,
 * brackets or zone id) into bytes; null when it is not an IP address. Only canonical dotted-quad
 * IPv4 is accepted: shorthand like `127.1` or `0x7f000001` is a host name to the resolver, and the
 * WHATWG URL parser has already normalised such spellings in a URL's host.
 */
export function parseIp(text: string): IpBytes | null {
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIPv4(s)) return new Uint8Array(s.split('.').map(Number));
  if (!isIPv6(s)) return null;

  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded dotted quad (::ffff:127.0.0.1): rewrite it as the two 16-bit groups it stands for.
    const [a = 0, b = 0, c = 0, d = 0] = last.split('.').map(Number);
    s = `${s.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const groups = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const gap = s.indexOf('::');
  const head = groups(gap < 0 ? s : s.slice(0, gap));
  const rest = gap < 0 ? [] : groups(s.slice(gap + 2));
  const all =
    gap < 0 ? head : [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

export function formatIp(bytes: IpBytes): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

/** An IPv4 or IPv6 network; `bytes` has the network's length (4 or 16). */
export interface Cidr {
  readonly bytes: IpBytes;
  readonly prefix: number;
  readonly text: string;
}

/** Parses `10.0.0.0/8`, `fd00::/8` or a bare address (a /32 or /128). @throws TypeError */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!addr) throw new TypeError(`invalid CIDR ${JSON.stringify(text)}: not an IP address`);
  const max = addr.length * 8;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) {
    throw new TypeError(`invalid CIDR ${JSON.stringify(text)}: prefix must be 0–${max}`);
  }
  return { bytes: addr, prefix, text };
}

export function cidrContains(cidr: Cidr, ip: IpBytes): boolean {
  if (cidr.bytes.length !== ip.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((cidr.bytes[i] ?? 0) & mask) !== ((ip[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Why an address is not a public unicast destination. */
export type AddressClass =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'carrier-grade NAT'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'benchmarking'
  | 'reserved';

/** The IPv4 address an IPv6 address carries, and how (mapped, NAT64, 6to4, ...). */
export interface EmbeddedIpv4 {
  readonly via: 'IPv4-mapped' | 'IPv4-compatible' | 'IPv4-translated' | 'NAT64' | '6to4';
  readonly ipv4: IpBytes;
}

export function embeddedIpv4(ip: IpBytes): EmbeddedIpv4 | null {
  if (ip.length !== 16) return null;
  const zeros = (from: number, to: number) => ip.slice(from, to).every((b) => b === 0);
  const last4 = ip.slice(12, 16);
  if (zeros(0, 10) && ip[10] === 0xff && ip[11] === 0xff) return { via: 'IPv4-mapped', ipv4: last4 };
  // ::ffff:0:a.b.c.d (RFC 2765 SIIT)
  if (zeros(0, 8) && ip[8] === 0xff && ip[9] === 0xff && zeros(10, 12)) {
    return { via: 'IPv4-translated', ipv4: last4 };
  }
  // ::a.b.c.d (deprecated). Not ::/120 (::, ::1, ::2…): those are IPv6 addresses of their own
  // (refused by IPV6_RULES), which an IPv4 allowance such as 0.0.0.0/8 must not open.
  if (zeros(0, 12) && !zeros(12, 15)) return { via: 'IPv4-compatible', ipv4: last4 };
  // 64:ff9b::/96 (RFC 6052 well-known NAT64 prefix)
  if (ip[0] === 0x00 && ip[1] === 0x64 && ip[2] === 0xff && ip[3] === 0x9b && zeros(4, 12)) {
    return { via: 'NAT64', ipv4: last4 };
  }
  // 2002:AABB:CCDD::/48 (6to4)
  if (ip[0] === 0x20 && ip[1] === 0x02) return { via: '6to4', ipv4: ip.slice(2, 6) };
  return null;
}

type Rule = readonly [Cidr, AddressClass];
const rules = (list: ReadonlyArray<readonly [string, AddressClass]>): Rule[] =>
  list.map(([c, k]) => [parseCidr(c), k] as const);

// Order matters: the first match wins (broadcast before 240/4).
const IPV4_RULES = rules([
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'carrier-grade NAT'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'reserved'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', 'reserved'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
]);

const IPV6_RULES = rules([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::/120', 'reserved'], // ::2–::ff
  ['64:ff9b:1::/48', 'private'], // RFC 8215 local-use NAT64
  ['100::/64', 'reserved'], // discard-only
  ['2001::/32', 'reserved'], // Teredo: the embedded addresses are not worth trusting
  ['2001:2::/48', 'benchmarking'], // RFC 5180
  ['2001:20::/28', 'reserved'], // ORCHIDv2
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'], // RFC 9637
  ['5f00::/16', 'reserved'], // SRv6 SIDs
  ['fc00::/7', 'private'], // unique local (includes AWS's fd00:ec2::254)
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'private'], // deprecated site-local
  ['ff00::/8', 'multicast'],
]);

export interface Classification {
  readonly class: AddressClass;
  /** Set when the class comes from an IPv4 address embedded in an IPv6 one. */
  readonly via?: EmbeddedIpv4['via'];
}

/**
 * The class of a non-public address, or null for a public unicast one. IPv6 forms that embed an
 * IPv4 address (mapped, compatible, translated, NAT64, 6to4) take the class of that address; the
 * deprecated IPv4-compatible form is refused whatever it embeds.
 */
export function classifyIp(ip: IpBytes): Classification | null {
  if (ip.length === 4) {
    for (const [cidr, cls] of IPV4_RULES) if (cidrContains(cidr, ip)) return { class: cls };
    return null;
  }
  for (const [cidr, cls] of IPV6_RULES) if (cidrContains(cidr, ip)) return { class: cls };
  const embedded = embeddedIpv4(ip);
  if (embedded) {
    const inner = classifyIp(embedded.ipv4);
    if (inner) return { class: inner.class, via: embedded.via };
    if (embedded.via === 'IPv4-compatible') return { class: 'reserved', via: embedded.via };
  }
  return null;
}

export function describeClassification(c: Classification): string {
  return c.via ? `${c.via} ${c.class} address` : `${c.class} address`;
}
