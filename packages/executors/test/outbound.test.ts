import { PermanentJobError } from '@chronos/core';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  classifyIp,
  compileOutboundPolicy,
  createHttpExecutor,
  OutboundRefusedError,
  parseIp,
  type LookupFunction,
} from '../src/index.ts';
import { NOTHING_INTERNAL, makeCtx, rejection, startServer, type TestServer } from './helpers.ts';

let target: TestServer;
beforeAll(async () => {
  target = await startServer((_req, res) => res.end('reached'));
});
afterAll(() => target.close());
beforeEach(() => {
  target.requests.length = 0;
});

/** A resolver that answers every name with fixed addresses (a rebinding DNS server, in effect). */
function resolvingTo(...addresses: string[]): LookupFunction & { calls: string[] } {
  const calls: string[] = [];
  const lookup: LookupFunction = (hostname, options, callback) => {
    calls.push(hostname);
    const all: LookupAddress[] = addresses.map((address) => ({
      address,
      family: address.includes(':') ? 6 : 4,
    }));
    if (options.all) callback(null, all);
    else callback(null, all[0]!.address, all[0]!.family);
  };
  return Object.assign(lookup, { calls });
}

describe('outbound policy: internal addresses are refused at connect time', () => {
  const spellings = [
    ['127.0.0.1', 'loopback'],
    ['localhost', 'loopback'],
    ['127.1', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['2130706433', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['[::1]', 'loopback'],
    ['[::ffff:127.0.0.1]', 'IPv4-mapped loopback'],
    ['[::ffff:7f00:1]', 'IPv4-mapped loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'unspecified'],
    ['[::]', 'unspecified'],
    ['[fd00:ec2::254]', 'private'],
    ['[fe80::1]', 'link-local'],
    ['[64:ff9b::7f00:1]', 'NAT64 loopback'],
    ['[2002:7f00:1::]', '6to4 loopback'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['metadata.google.internal', 'cloud metadata'],
  ] as const;

  it.each(spellings)('refuses http://%s (%s) without any connection', async (host, cls) => {
    const err = await rejection(() =>
      createHttpExecutor()(
        { httpUrl: `http://${host}:${target.port}/` },
        makeCtx({ outbound: NOTHING_INTERNAL }),
      ),
    );
    expect(err).toBeInstanceOf(OutboundRefusedError);
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('OUTBOUND_REFUSED');
    expect(err.message).toContain(cls);
    expect(target.requests).toHaveLength(0);
  });

  it.each(['localhost', '127.0.0.1', '[::1]', '169.254.169.254'])(
    'refuses https://%s as well (the TLS connect path)',
    async (host) => {
      const err = await rejection(() =>
        createHttpExecutor()(
          { httpUrl: `https://${host}:${target.port}/` },
          makeCtx({ outbound: NOTHING_INTERNAL }),
        ),
      );
      expect(err.code).toBe('OUTBOUND_REFUSED');
      expect(target.requests).toHaveLength(0);
    },
  );

  it('names the host and the address class in the refusal, and the worker settings that allow it', async () => {
    const err = await rejection(() =>
      createHttpExecutor()(
        { httpUrl: `http://localhost:${target.port}/` },
        makeCtx({ outbound: NOTHING_INTERNAL }),
      ),
    );
    expect(err.message).toMatch(/"localhost" \((127\.0\.0\.1|::1)\) refused: loopback address/);
    expect(err.message).toMatch(
      /; if intended, allow it on the worker with HTTP_ALLOW_HOSTS=localhost or HTTP_ALLOW_CIDRS=(127\.0\.0\.1\/32|::1\/128)$/,
    );
    const policy = compileOutboundPolicy(NOTHING_INTERNAL);
    expect(policy.refuseName('metadata.google.internal')?.message).toMatch(
      /refused: cloud metadata host name; if intended, allow it on the worker with HTTP_ALLOW_HOSTS=metadata\.google\.internal$/,
    );
    expect(policy.refuseAddress('db.internal', 'fd00::5')?.message).toMatch(/HTTP_ALLOW_CIDRS=fd00::5\/128$/);
  });

  it('lets a public address through the check (the connection itself then fails here: no internet)', () => {
    const policy = compileOutboundPolicy(NOTHING_INTERNAL);
    expect(policy.refuseAddress('example.com', '93.184.215.14')).toBeNull();
    expect(policy.refuseAddress('example.com', '2606:2800:21f:cb07:6820:80da:af6b:8b2c')).toBeNull();
  });

  it('allows a host listed in allowHosts (case-insensitive, optional port)', async () => {
    const run = createHttpExecutor();
    for (const allowHosts of [['LOCALHOST'], [`localhost:${target.port}`]]) {
      const { output } = await run(
        { httpUrl: `http://localhost:${target.port}/` },
        makeCtx({ outbound: { allowHosts, allowCidrs: [] } }),
      );
      expect(output).toMatchObject({ status: 200, body: 'reached' });
    }
    const wrongPort = await rejection(() =>
      run(
        { httpUrl: `http://127.0.0.1:${target.port}/` },
        makeCtx({ outbound: { allowHosts: ['127.0.0.1:1'], allowCidrs: [] } }),
      ),
    );
    expect(wrongPort.code).toBe('OUTBOUND_REFUSED');
    expect(target.requests).toHaveLength(2);
  });

  it('allows a resolved address inside allowCidrs, including its IPv4-mapped form', async () => {
    const run = createHttpExecutor();
    const { output } = await run(
      { httpUrl: `http://127.1:${target.port}/` },
      makeCtx({ outbound: { allowHosts: [], allowCidrs: ['127.0.0.0/8'] } }),
    );
    expect(output).toMatchObject({ status: 200 });
    const policy = compileOutboundPolicy({ allowHosts: [], allowCidrs: ['127.0.0.0/8', 'fd00::/8'] });
    expect(policy.refuseAddress('x', '::ffff:127.0.0.1')).toBeNull();
    expect(policy.refuseAddress('x', 'fd12::1')).toBeNull();
    expect(policy.refuseAddress('x', '10.0.0.1')?.addressClass).toBe('private address');
    // An IPv4 allowance does not open IPv6 loopback (:: and ::1 embed no IPv4 address).
    const v4 = compileOutboundPolicy({ allowHosts: [], allowCidrs: ['0.0.0.0/8', '127.0.0.0/8'] });
    for (const ip of ['::1', '::', '::5']) expect(v4.refuseAddress('x', ip), ip).not.toBeNull();
  });

  it('checks the address a host name resolves to when connecting (DNS rebinding)', async () => {
    const lookup = resolvingTo('127.0.0.1');
    const run = createHttpExecutor({ lookup });
    const url = `http://rebind.example:${target.port}/`;
    const refused = await rejection(() => run({ httpUrl: url }, makeCtx({ outbound: NOTHING_INTERNAL })));
    expect(refused).toMatchObject({ code: 'OUTBOUND_REFUSED', host: 'rebind.example', address: '127.0.0.1' });
    expect(lookup.calls).toContain('rebind.example');
    expect(target.requests).toHaveLength(0);

    const byCidr = await run(
      { httpUrl: url },
      makeCtx({ outbound: { allowHosts: [], allowCidrs: ['127.0.0.1/32'] } }),
    );
    expect(byCidr.output).toMatchObject({ status: 200 });
    const byHost = await run(
      { httpUrl: url },
      makeCtx({ outbound: { allowHosts: ['rebind.example'], allowCidrs: [] } }),
    );
    expect(byHost.output).toMatchObject({ status: 200 });
  });

  it('refuses a name when any of its addresses is internal', async () => {
    const run = createHttpExecutor({ lookup: resolvingTo('8.8.8.8', '10.1.2.3') });
    const err = await rejection(() =>
      run({ httpUrl: `http://mixed.example:${target.port}/` }, makeCtx({ outbound: NOTHING_INTERNAL })),
    );
    expect(err).toMatchObject({ code: 'OUTBOUND_REFUSED', address: '10.1.2.3' });
  });

  it('checks every redirect hop: an allowed server cannot redirect to a refused address', async () => {
    const other = await startServer((_req, res) => res.end('internal'));
    try {
      const redirector = await startServer((req, res) => {
        res.statusCode = 302;
        res.setHeader(
          'location',
          req.url === '/meta'
            ? 'http://169.254.169.254/latest/meta-data/'
            : `http://127.0.0.1:${other.port}/`,
        );
        res.end();
      });
      try {
        const outbound = { allowHosts: [`127.0.0.1:${redirector.port}`], allowCidrs: [] };
        const run = createHttpExecutor();
        for (const path of ['/other', '/meta']) {
          const err = await rejection(() =>
            run({ httpUrl: `${redirector.origin}${path}` }, makeCtx({ outbound })),
          );
          expect(err.code).toBe('OUTBOUND_REFUSED');
        }
        expect(redirector.requests).toHaveLength(2);
        expect(other.requests).toHaveLength(0);
      } finally {
        await redirector.close();
      }
    } finally {
      await other.close();
    }
  });

  it('checks the OAuth2 token endpoint too', async () => {
    const err = await rejection(() =>
      createHttpExecutor()(
        {
          httpUrl: 'https://api.example/',
          httpAuth: {
            type: 'OAUTH2_CLIENT_CREDENTIALS',
            tokenUrl: `http://127.0.0.1:${target.port}/token`,
            clientId: 'id',
            clientSecret: 'secret',
          },
        },
        makeCtx({ outbound: NOTHING_INTERNAL }),
      ),
    );
    expect(err.code).toBe('OUTBOUND_REFUSED');
    expect(target.requests).toHaveLength(0);
  });

  it('refuses an invalid policy entry', () => {
    expect(() => compileOutboundPolicy({ allowHosts: [], allowCidrs: ['10.0.0.0/33'] })).toThrow(/prefix/);
    expect(() => compileOutboundPolicy({ allowHosts: ['host:port'], allowCidrs: [] })).toThrow(/allowHosts/);
  });
});

describe('address classification', () => {
  it.each([
    ['8.8.8.8', null],
    ['172.32.0.1', null],
    ['100.128.0.1', null],
    ['2606:4700::1111', null],
    ['2002:808:808::1', null],
    ['64:ff9b::808:808', null],
    ['127.255.255.254', 'loopback'],
    ['172.31.255.255', 'private'],
    ['100.127.255.255', 'carrier-grade NAT'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['240.0.0.1', 'reserved'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:0:169.254.169.254', 'link-local'],
    ['::127.0.0.1', 'loopback'],
    ['::8.8.8.8', 'reserved'],
    ['fc00::1', 'private'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'],
    ['::2', 'reserved'],
    ['::0.0.0.5', 'reserved'],
    ['2001:2::1', 'benchmarking'],
    ['2001:20::1', 'reserved'],
    ['3fff::1', 'documentation'],
    ['5f00::1', 'reserved'],
  ])('%s → %s', (address, expected) => {
    const ip = parseIp(address);
    expect(ip).not.toBeNull();
    expect(classifyIp(ip!)?.class ?? null).toBe(expected);
  });

  it('does not treat shorthand IPv4 as an address (it is normalised by the URL parser, or resolved)', () => {
    expect(parseIp('127.1')).toBeNull();
    expect(parseIp('0x7f000001')).toBeNull();
    expect(new URL('http://0x7f000001/').hostname).toBe('127.0.0.1');
    expect(new URL('http://[::ffff:127.0.0.1]/').hostname).toBe('[::ffff:7f00:1]');
  });
});
