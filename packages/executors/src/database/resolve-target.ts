import { RetryableJobError } from '@chronos/core';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { OutboundRefusedError } from '../errors.ts';
import { parseIp } from '../ip-address.ts';
import type { CompiledOutboundPolicy, LookupFunction } from '../outbound-guard.ts';

/**
 * The address to dial for `host:port`, checked against the outbound policy: every address the name
 * resolves to must pass (as for HTTP), and the connection then goes to the checked address rather
 * than to the name, so a second resolution cannot swap in an internal one. A host in allowHosts
 * skips the address checks.
 * @throws OutboundRefusedError (OUTBOUND_REFUSED) naming the host; RetryableJobError NETWORK when
 *   the name does not resolve
 */
export async function resolveTarget(
  policy: CompiledOutboundPolicy,
  host: string,
  port: number,
  lookup: LookupFunction = dnsLookup as unknown as LookupFunction,
): Promise<string> {
  const allowed = policy.allowsHost(host, port);
  if (parseIp(host)) {
    const refusal = allowed ? null : policy.refuseAddress(host, host);
    if (refusal) throw refusal;
    return host;
  }
  if (!allowed) {
    const refusal = policy.refuseName(host);
    if (refusal) throw refusal;
  }
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) => {
    lookup(host, { all: true }, (err, address) => {
      if (err) {
        reject(
          new RetryableJobError(
            `cannot resolve database host ${JSON.stringify(host)}: ${err.message}`,
            'NETWORK',
          ),
        );
      } else {
        resolve(Array.isArray(address) ? address : [{ address, family: address.includes(':') ? 6 : 4 }]);
      }
    });
  });
  const first = addresses[0];
  if (!first) throw new OutboundRefusedError(host, null, 'no address');
  if (!allowed) {
    for (const entry of addresses) {
      const refusal = policy.refuseAddress(host, entry.address);
      if (refusal) throw refusal;
    }
  }
  return first.address;
}
