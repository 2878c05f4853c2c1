import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Whom the API believes about the client's address (`X-Forwarded-For`), in the forms Express'
 * `trust proxy` takes: `false` (nobody: the socket's peer is the client), a number of proxy hops in
 * front of the API, or the proxies' addresses (IPs, CIDRs, and `loopback`, `linklocal`,
 * `uniquelocal`).
 */
export type TrustProxy = false | number | readonly string[];

/** proxy-addr's named ranges. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** Why `item` is not an address, a CIDR or a named range; undefined when it is one. */
function badProxyAddress(item: string): string | undefined {
  if (NAMED_RANGES.has(item)) return undefined;
  const slash = item.indexOf('/');
  const address = slash < 0 ? item : item.slice(0, slash);
  const family = isIP(address);
  if (family === 0)
    return `"${item}" is not an IP address, a CIDR or one of loopback, linklocal, uniquelocal`;
  if (slash < 0) return undefined;
  const bits = item.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max)
    return `"${item}" needs a prefix length of 0–${max} after "/"`;
  return undefined;
}

/**
 * `TRUST_PROXY`: unset, `none`, `false` or `0` trust nobody (the default: any client could otherwise
 * pick its own address, e.g. to get past the per-IP sign-in throttle); `1`, `2`… trust that many
 * hops; `loopback` or `10.0.0.0/8, 192.0.2.7` trust those proxies. `true` is refused: it would
 * believe any address a client writes into X-Forwarded-For.
 */
export const trustProxySetting = z
  .string()
  .optional()
  .transform((raw, ctx): TrustProxy => {
    const v = (raw ?? '').trim().toLowerCase();
    if (v === '' || v === 'none' || v === 'false') return false;
    if (v === 'true') {
      ctx.addIssue({
        code: 'custom',
        message:
          'must not be "true" (any client could then choose its own address): name the proxies, e.g. "loopback" or "10.0.0.0/8", or give their number of hops',
      });
      return z.NEVER;
    }
    if (/^\d+$/.test(v)) {
      const hops = Number(v);
      if (hops > 100) {
        ctx.addIssue({ code: 'custom', message: `must be at most 100 hops (got ${hops})` });
        return z.NEVER;
      }
      return hops === 0 ? false : hops;
    }
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = items.map(badProxyAddress).filter((m) => m !== undefined);
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `must be none, a hop count, or a comma-separated list of proxy addresses: ${bad.join('; ')}`,
      });
      return z.NEVER;
    }
    return items;
  });
