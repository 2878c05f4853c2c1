import { PermanentJobError, RetryableJobError } from '@chronos/core';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpExecutor, type HttpOutput } from '../src/index.ts';
import { makeCtx, rejection, startServer, type TestServer } from './helpers.ts';

const servers: TestServer[] = [];
async function server(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const s = await startServer(...args);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const echo = () =>
  server((req, res, body) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('x-echo', 'yes');
    res.end(JSON.stringify({ method: req.method, url: req.url, body }));
  });

describe('HTTP executor: the request it sends', () => {
  it('sends each method with headers, body and query params, and outputs status, headers, body, duration', async () => {
    const s = await echo();
    const run = createHttpExecutor();
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const) {
      const { output } = await run(
        {
          httpUrl: `${s.origin}/things?existing=1`,
          httpMethod: method,
          httpHeaders: { 'X-Custom': 'custom value', Accept: 'application/json' },
          httpBody: method === 'GET' || method === 'OPTIONS' ? undefined : '{"a":1}',
          httpQueryParams: { q: 'a b&c', page: 2, tag: ['x', 'y'] },
        },
        makeCtx(),
      );
      const out = output as HttpOutput;
      expect(out.status).toBe(200);
      expect(out.headers['x-echo']).toBe('yes');
      expect(out.bodyTruncated).toBe(false);
      expect(out.durationMs).toBeGreaterThanOrEqual(0);
      expect(JSON.parse(out.body)).toMatchObject({
        method,
        url: '/things?existing=1&q=a+b%26c&page=2&tag=x&tag=y',
      });
    }
    expect(s.requests.map((r) => r.method)).toEqual(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
    const post = s.requests[1]!;
    expect(post.headers['x-custom']).toBe('custom value');
    expect(post.headers['accept']).toBe('application/json');
    expect(post.headers['content-type']).toBe('application/json');
    expect(post.body).toBe('{"a":1}');
  });

  it('sends HEAD and outputs an empty body', async () => {
    const s = await echo();
    const { output } = await createHttpExecutor()({ httpUrl: s.origin, httpMethod: 'HEAD' }, makeCtx());
    expect(output).toMatchObject({ status: 200, body: '' });
    expect(s.requests[0]?.method).toBe('HEAD');
  });

  it('labels a non-JSON body text/plain unless the payload sets Content-Type', async () => {
    const s = await echo();
    const run = createHttpExecutor();
    await run({ httpUrl: s.origin, httpMethod: 'POST', httpBody: 'hello' }, makeCtx());
    await run(
      {
        httpUrl: s.origin,
        httpMethod: 'POST',
        httpBody: 'a=1',
        httpHeaders: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      makeCtx(),
    );
    expect(s.requests[0]?.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(s.requests[1]?.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it("sends the run's idempotency key as Idempotency-Key unless the payload sets one", async () => {
    const s = await echo();
    const run = createHttpExecutor();
    const ctx = makeCtx();
    await run({ httpUrl: s.origin }, ctx);
    await run({ httpUrl: s.origin, httpHeaders: { 'Idempotency-Key': 'mine' } }, ctx);
    expect(s.requests[0]?.headers['idempotency-key']).toBe(ctx.idempotencyKey);
    expect(s.requests[1]?.headers['idempotency-key']).toBe('mine');
  });

  it('authenticates with Basic and Bearer', async () => {
    const s = await echo();
    const run = createHttpExecutor();
    await run(
      { httpUrl: s.origin, httpAuth: { type: 'BASIC', username: 'üser', password: 'p:ss' } },
      makeCtx(),
    );
    await run({ httpUrl: s.origin, httpAuth: { type: 'BEARER', token: 't0ken' } }, makeCtx());
    await run({ httpUrl: s.origin, httpAuth: { type: 'NONE' } }, makeCtx());
    expect(s.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from('üser:p:ss').toString('base64')}`);
    expect(s.requests[1]?.headers.authorization).toBe('Bearer t0ken');
    expect(s.requests[2]?.headers.authorization).toBeUndefined();
  });

  it('refuses an invalid payload or an unresolved template with INVALID_PAYLOAD, sending nothing', async () => {
    const s = await echo();
    const run = createHttpExecutor();
    for (const payload of [
      { httpUrl: `{{var.BASE}}/x` },
      { httpUrl: 'ftp://127.0.0.1/' },
      { httpUrl: s.origin, httpMethod: 'FETCH' as 'GET' },
      { httpUrl: s.origin, timeoutSeconds: 0 },
    ]) {
      const err = await rejection(() => run(payload, makeCtx()));
      expect(err).toBeInstanceOf(PermanentJobError);
      expect(err.code).toBe('INVALID_PAYLOAD');
    }
    const err = await rejection(() => run({ httpUrl: s.origin, timeoutSeconds: 0 }, makeCtx()));
    expect(err.message).toContain('timeoutSeconds');
    expect(s.requests).toHaveLength(0);
  });
});

describe('HTTP executor: statuses', () => {
  it('succeeds on 2xx by default and on exactly the expected statuses when listed', async () => {
    const s = await server((req, res) => {
      res.statusCode = Number(req.url?.slice(1));
      res.end('body');
    });
    const run = createHttpExecutor();
    expect((await run({ httpUrl: `${s.origin}/204` }, makeCtx())).output).toMatchObject({ status: 204 });
    expect(
      (await run({ httpUrl: `${s.origin}/404`, httpExpectedStatuses: [200, 404] }, makeCtx())).output,
    ).toMatchObject({ status: 404, body: 'body' });
    const unexpected = await rejection(() =>
      run({ httpUrl: `${s.origin}/200`, httpExpectedStatuses: [201] }, makeCtx()),
    );
    expect(unexpected).toBeInstanceOf(PermanentJobError);
    expect(unexpected).toMatchObject({ code: 'HTTP_UNEXPECTED', httpStatus: 200 });
    expect(
      (await run({ httpUrl: `${s.origin}/503`, httpExpectedStatuses: [503] }, makeCtx())).output,
    ).toMatchObject({
      status: 503,
    });
  });

  it('classifies 5xx and 429 as retryable (keeping Retry-After) and other 4xx as permanent', async () => {
    const s = await server((req, res) => {
      const status = Number(req.url?.slice(1));
      if (status === 429) res.setHeader('retry-after', '7');
      res.statusCode = status;
      res.end(`failure ${status}`);
    });
    const run = createHttpExecutor();
    const e500 = await rejection(() => run({ httpUrl: `${s.origin}/500` }, makeCtx()));
    expect(e500).toBeInstanceOf(RetryableJobError);
    expect(e500).toMatchObject({ code: 'HTTP_5XX', httpStatus: 500 });
    expect(e500.message).toContain('failure 500');
    expect(e500.response).toMatchObject({ status: 500, body: 'failure 500' });

    const e429 = await rejection(() => run({ httpUrl: `${s.origin}/429` }, makeCtx()));
    expect(e429).toBeInstanceOf(RetryableJobError);
    expect(e429).toMatchObject({ code: 'HTTP_429', httpStatus: 429, retryAfter: '7', retryAfterMs: 7000 });

    for (const status of [400, 401, 403, 404, 422]) {
      const e = await rejection(() => run({ httpUrl: `${s.origin}/${status}` }, makeCtx()));
      expect(e).toBeInstanceOf(PermanentJobError);
      expect(e).toMatchObject({ code: 'HTTP_4XX', httpStatus: status });
    }
  });

  it('caps the output body at 64 KiB and flags it, without splitting a character', async () => {
    const big = 'é'.repeat(100_000); // 2 bytes each
    const s = await server((req, res) => {
      if (req.url === '/gzip') {
        res.setHeader('content-encoding', 'gzip');
        res.end(gzipSync(Buffer.from('x'.repeat(10_000_000))));
      } else res.end(req.url === '/small' ? 'small' : big);
    });
    const run = createHttpExecutor();
    const out = (await run({ httpUrl: `${s.origin}/big` }, makeCtx())).output as HttpOutput;
    expect(out.bodyTruncated).toBe(true);
    expect(out.body).toBe('é'.repeat(32_768));
    expect((await run({ httpUrl: `${s.origin}/small` }, makeCtx())).output).toMatchObject({
      body: 'small',
      bodyTruncated: false,
    });
    // The cap applies to decoded bytes: a 10 MB gzip bomb yields 64 KiB.
    const gz = (await run({ httpUrl: `${s.origin}/gzip` }, makeCtx())).output as HttpOutput;
    expect(gz).toMatchObject({ bodyTruncated: true });
    expect(gz.body).toBe('x'.repeat(65_536));
  });

  it('classifies a refused connection, a reset and a DNS failure as NETWORK', async () => {
    const s = await server((req, res) => {
      req.socket.destroy();
      res.end();
    });
    const closed = await startServer(() => {});
    await closed.close();
    const run = createHttpExecutor({
      lookup: (hostname, _options, callback) =>
        callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '', 0),
    });
    const refused = await rejection(() => run({ httpUrl: closed.origin }, makeCtx()));
    expect(refused).toBeInstanceOf(RetryableJobError);
    expect(refused.code).toBe('NETWORK');
    expect(refused.message).toContain('ECONNREFUSED');
    const reset = await rejection(() => run({ httpUrl: s.origin }, makeCtx()));
    expect(reset).toMatchObject({ code: 'NETWORK' });
    const dns = await rejection(() => run({ httpUrl: 'https://no-such-host.example/' }, makeCtx()));
    expect(dns).toMatchObject({ code: 'NETWORK' });
    expect(dns.message).toContain('ENOTFOUND');
  });
});

describe('HTTP executor: abort', () => {
  it('stops the request at once when ctx.signal aborts, rejecting with its reason', async () => {
    let closedAt = 0;
    const s = await server((req) => {
      // Never answers; notes when the client goes away.
      req.socket.on('close', () => (closedAt = Date.now()));
    });
    const controller = new AbortController();
    const reason = new Error('run timed out after 1 s');
    const started = Date.now();
    setTimeout(() => controller.abort(reason), 150);
    const err = await rejection(() =>
      createHttpExecutor()({ httpUrl: s.origin }, makeCtx({ signal: controller.signal })),
    );
    expect(err).toBe(reason);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect.poll(() => closedAt, { timeout: 1000 }).toBeGreaterThan(0);
    expect(closedAt - started).toBeLessThan(1000);
  });

  it('stops reading a slow body when aborted', async () => {
    const s = await server((_req, res) => {
      res.write('first chunk');
      // ...and nothing more.
    });
    const controller = new AbortController();
    const reason = new Error('run cancelled');
    setTimeout(() => controller.abort(reason), 150);
    const err = await rejection(() =>
      createHttpExecutor()({ httpUrl: s.origin }, makeCtx({ signal: controller.signal })),
    );
    expect(err).toBe(reason);
  });

  it('does not send anything when the signal is already aborted', async () => {
    const s = await echo();
    const reason = new Error('already cancelled');
    const err = await rejection(() =>
      createHttpExecutor()({ httpUrl: s.origin }, makeCtx({ signal: AbortSignal.abort(reason) })),
    );
    expect(err).toBe(reason);
    expect(s.requests).toHaveLength(0);
  });
});

describe('HTTP executor: oversized responses', () => {
  it('fails a response with more than 16 KiB of headers permanently (not a retryable network error)', async () => {
    const s = await server((_req, res) => {
      res.setHeader('x-big', 'a'.repeat(20_000));
      res.end('ok');
    });
    const err = await rejection(() => createHttpExecutor()({ httpUrl: s.origin }, makeCtx()));
    expect(err).toMatchObject({ code: 'HTTP_HEADERS_TOO_LARGE', retryable: false });
    expect(err.message).toMatch(/headers exceed 16 KiB/);
  });
});

describe('HTTP executor: redirects', () => {
  it('follows up to 5 redirects and refuses the 6th', async () => {
    const s = await server((req, res) => {
      const n = Number(req.url?.slice(1));
      if (n > 0) {
        res.statusCode = n % 2 === 0 ? 302 : 307;
        res.setHeader('location', `/${n - 1}`);
        res.end();
      } else res.end('arrived');
    });
    const run = createHttpExecutor();
    expect((await run({ httpUrl: `${s.origin}/5` }, makeCtx())).output).toMatchObject({
      status: 200,
      body: 'arrived',
    });
    s.requests.length = 0;
    const err = await rejection(() => run({ httpUrl: `${s.origin}/6` }, makeCtx()));
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('TOO_MANY_REDIRECTS');
    expect(s.requests.map((r) => r.url)).toEqual(['/6', '/5', '/4', '/3', '/2', '/1']);
  });

  it('does not follow when httpFollowRedirects is false: the 3xx is the result, judged by expected statuses', async () => {
    const s = await server((req, res) => {
      if (req.url === '/from') {
        res.statusCode = 302;
        res.setHeader('location', '/to');
      }
      res.end();
    });
    const run = createHttpExecutor();
    const err = await rejection(() =>
      run({ httpUrl: `${s.origin}/from`, httpFollowRedirects: false }, makeCtx()),
    );
    expect(err).toMatchObject({ code: 'HTTP_3XX', httpStatus: 302 });
    const ok = await run(
      { httpUrl: `${s.origin}/from`, httpFollowRedirects: false, httpExpectedStatuses: [302] },
      makeCtx(),
    );
    expect(ok.output).toMatchObject({ status: 302, headers: { location: '/to' } });
    expect(s.requests.map((r) => r.url)).toEqual(['/from', '/from']);
  });

  it('turns a POST into a GET without body on 303, and keeps method and body on 307', async () => {
    const s = await server((req, res) => {
      if (req.url === '/303' || req.url === '/307') {
        res.statusCode = Number(req.url.slice(1));
        res.setHeader('location', '/done');
      }
      res.end();
    });
    const run = createHttpExecutor();
    await run({ httpUrl: `${s.origin}/303`, httpMethod: 'POST', httpBody: '{"x":1}' }, makeCtx());
    await run({ httpUrl: `${s.origin}/307`, httpMethod: 'POST', httpBody: '{"x":1}' }, makeCtx());
    const [p303, g303, p307, p307b] = s.requests;
    expect([p303?.method, g303?.method, g303?.body, g303?.headers['content-type']]).toEqual([
      'POST',
      'GET',
      '',
      undefined,
    ]);
    expect([p307?.method, p307b?.method, p307b?.body]).toEqual(['POST', 'POST', '{"x":1}']);
  });

  it("keeps the payload's headers on same-origin redirects; cross-origin only the executor's own go on", async () => {
    const other = await echo();
    const s = await server((req, res) => {
      if (req.url === '/same') {
        res.statusCode = 302;
        res.setHeader('location', '/landing');
      } else if (req.url === '/cross') {
        res.statusCode = 307;
        res.setHeader('location', `${other.origin}/landing`);
      }
      res.end();
    });
    const run = createHttpExecutor();
    const payload = {
      httpAuth: { type: 'BEARER', token: 'secret' } as const,
      httpHeaders: { Cookie: 'session=1', 'X-Keep': 'k' },
    };
    await run({ ...payload, httpUrl: `${s.origin}/same` }, makeCtx());
    expect(s.requests[1]).toMatchObject({
      url: '/landing',
      headers: { authorization: 'Bearer secret', cookie: 'session=1' },
    });
    await run({ ...payload, httpUrl: `${s.origin}/cross` }, makeCtx());
    expect(s.requests[2]?.headers.authorization).toBe('Bearer secret');
    expect(s.requests[1]?.headers['x-keep']).toBe('k');
    const landed = other.requests[0]!;
    expect(landed.url).toBe('/landing');
    // Any payload header may be the first origin's credential (an API key header, say).
    expect(landed.headers.authorization).toBeUndefined();
    expect(landed.headers.cookie).toBeUndefined();
    expect(landed.headers['x-keep']).toBeUndefined();
    expect(landed.headers['idempotency-key']).toBeDefined();
    expect(landed.headers['user-agent']).toBeDefined();
  });

  it('never keeps the credentials it sent, nor response cookies, in the output or the error', async () => {
    // A server that echoes the request's Authorization and sets a session cookie.
    const s = await server((req, res) => {
      res.statusCode = req.url === '/fail' ? 400 : 200;
      res.setHeader('set-cookie', 'session=abc123def456; HttpOnly');
      res.end(JSON.stringify({ saw: req.headers.authorization }));
    });
    const run = createHttpExecutor();
    const { output } = await run(
      { httpUrl: s.origin, httpAuth: { type: 'BEARER', token: 'tok-runtime-1234' } },
      makeCtx(),
    );
    const out = output as HttpOutput;
    expect(out.body).toBe('{"saw":"***"}');
    expect(out.headers['set-cookie']).toBe('***');
    const err = await rejection(() =>
      run(
        {
          httpUrl: `${s.origin}/fail`,
          httpAuth: { type: 'BASIC', username: 'u', password: 'pw-runtime-9876' },
        },
        makeCtx(),
      ),
    );
    expect(JSON.stringify(err)).not.toMatch(/pw-runtime-9876|dTpwdy1ydW50aW1lLTk4NzY|abc123def456/);
  });
});
