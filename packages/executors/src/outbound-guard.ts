import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { OutboundRefusedError } from './errors.ts';
import {
  cidrContains,
  classifyIp,
  describeClassification,
  embeddedIpv4,
  formatIp,
  parseCidr,
  parseIp,
  type Cidr,
} from './ip-address.ts';
import type { OutboundPolicy } from './types.ts';

export type { LookupFunction } from 'node:net';

/** Names of cloud instance-metadata services, refused before any resolution. */
const METADATA_HOST_NAMES = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.azure.internal',
  'metadata.packet.net',
]);

/** Well-known instance-metadata addresses, named in refusals (their ranges are refused anyway). */
const METADATA_ADDRESSES = new Set([
  '169.254.169.254',
  '169.254.170.2',
  'fd00:ec2:0:0:0:0:0:254',
  '100.100.100.200',
]);

/** Lower case, no brackets, no trailing dot: the form host names are compared in. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

interface HostRule {
  host: string;
  port: number | null;
}

function parseHostRule(entry: string): HostRule {
  const text = entry.trim();
  const invalid = () => new TypeError(`invalid outbound allowHosts entry ${JSON.stringify(entry)}`);
  let host = text;
  let port: number | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? '';
    port = bracketed[2] === undefined ? null : Number(bracketed[2]);
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const [h = '', p = ''] = text.split(':');
    if (!/^\d+$/.test(p)) throw invalid();
    host = h;
    port = Number(p);
  }
  host = normalizeHost(host);
  if (host === '' || (port !== null && !(port >= 1 && port <= 65_535))) throw invalid();
  return { host, port };
}

/** An {@link OutboundPolicy} parsed once; decides whether a host or resolved address may be reached. */
export class CompiledOutboundPolicy {
  private readonly hosts: readonly HostRule[];
  private readonly cidrs: readonly Cidr[];

  /** @throws TypeError naming the bad allowHosts / allowCidrs entry */
  constructor(policy: OutboundPolicy) {
    this.hosts = policy.allowHosts.map(parseHostRule);
    this.cidrs = policy.allowCidrs.map((c) => parseCidr(c.trim()));
  }

  /** Whether `host` (a name or IP literal) is explicitly allowed, whatever it resolves to. */
  allowsHost(host: string, port: number): boolean {
    const h = normalizeHost(host);
    // Compare IP literals by value so that `::1` and `0:0::1` are one host.
    const ip = parseIp(h);
    return this.hosts.some((rule) => {
      if (rule.port !== null && rule.port !== port) return false;
      if (rule.host === h) return true;
      const ruleIp = ip && parseIp(rule.host);
      return !!ruleIp && ruleIp.length === ip.length && ruleIp.every((b, i) => b === ip[i]);
    });
  }

  /** Refuses cloud-metadata names (unless explicitly allowed); null when the name may be resolved. */
  refuseName(host: string): OutboundRefusedError | null {
    const h = normalizeHost(host);
    return METADATA_HOST_NAMES.has(h) ? new OutboundRefusedError(h, null, 'cloud metadata host name') : null;
  }

  /** The refusal for connecting to `address` on behalf of `host`, or null when it is allowed. */
  refuseAddress(host: string, address: string): OutboundRefusedError | null {
    const ip = parseIp(address);
    if (!ip) return new OutboundRefusedError(host, address, 'not an IP address');
    const cls = classifyIp(ip);
    if (!cls) return null;
    const embedded = embeddedIpv4(ip)?.ipv4;
    const allowed = this.cidrs.some((c) => cidrContains(c, ip) || (!!embedded && cidrContains(c, embedded)));
    if (allowed) return null;
    const metadata = METADATA_ADDRESSES.has(formatIp(ip)) ? ' (cloud metadata endpoint)' : '';
    return new OutboundRefusedError(host, address, describeClassification(cls) + metadata);
  }
}

const compiled = new WeakMap<OutboundPolicy, CompiledOutboundPolicy>();

/** {@link CompiledOutboundPolicy} of a policy object, parsed once per object. @throws TypeError */
export function compileOutboundPolicy(policy: OutboundPolicy): CompiledOutboundPolicy {
  let c = compiled.get(policy);
  if (!c) {
    c = new CompiledOutboundPolicy(policy);
    compiled.set(policy, c);
  }
  return c;
}

export interface OutboundConnectorOptions {
  /** Resolver used for host names (tests inject one). @defaultValue dns.lookup */
  lookup?: LookupFunction;
  /** @defaultValue 10_000 */
  connectTimeoutMs?: number;
}

/**
 * An undici connector that checks every connection at connect time, on the address actually
 * dialled: IP literals before dialling, host names inside the resolver callback (all resolved
 * addresses must pass), so DNS rebinding cannot slip an internal address past an earlier check.
 * Hosts in allowHosts connect without the check; allowCidrs admit internal addresses.
 */
export function createOutboundConnector(
  policy: CompiledOutboundPolicy,
  options: OutboundConnectorOptions = {},
): buildConnector.connector {
  const baseLookup = options.lookup ?? (dnsLookup as unknown as LookupFunction);
  const guardedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    baseLookup(hostname, lookupOptions, (err, address, family) => {
      if (err) return callback(err, address, family);
      const list: LookupAddress[] = Array.isArray(address) ? address : [{ address, family: family ?? 0 }];
      if (list.length === 0) return callback(new OutboundRefusedError(hostname, null, 'no address'), '', 0);
      for (const entry of list) {
        const refusal = policy.refuseAddress(hostname, entry.address);
        if (refusal) return callback(refusal, '', 0);
      }
      callback(null, address, family);
    });
  };
  const timeout = options.connectTimeoutMs ?? 10_000;
  const plain = buildConnector({ timeout, lookup: baseLookup });
  const guarded = buildConnector({ timeout, lookup: guardedLookup });

  return (connectOptions, callback) => {
    const host = normalizeHost(connectOptions.hostname);
    const port = Number(connectOptions.port) || (connectOptions.protocol === 'https:' ? 443 : 80);
    if (policy.allowsHost(host, port)) return plain(connectOptions, callback);
    const nameRefusal = policy.refuseName(host);
    if (nameRefusal) return callback(nameRefusal, null);
    if (parseIp(host)) {
      // Node dials IP literals without calling `lookup`, so they are checked here.
      const refusal = policy.refuseAddress(host, host);
      if (refusal) return callback(refusal, null);
      return plain(connectOptions, callback);
    }
    return guarded(connectOptions, callback);
  };
}
