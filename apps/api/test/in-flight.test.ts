// The in-flight limit on a small Express app of its own, where the test decides when each held
// request is answered and sees when its client has gone.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { inFlightLimit, leaveInFlight } from '../src/http/in-flight.ts';
import { errorHandler } from '../src/http/problem.ts';

/** A promise with its resolve function. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** One held request: the test sees it arrive and its client leave, and decides its answer. */
function heldRequest() {
  const arrived = deferred();
  const clientGone = deferred();
  const decided = deferred<boolean>();
  return {
    arrived: arrived.promise,
    clientGone: clientGone.promise,
    answer: () => decided.resolve(true),
    fail: () => decided.resolve(false),
    internals: { arrived, clientGone, decided },
  };
}

let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** An app whose `/hold/:key` waits for the test, `/stream` leaves the count, `/now` answers at once. */
async function startApp(max: number) {
  const held = new Map<string, ReturnType<typeof heldRequest>>();
  const hold = (key: string) => {
    let h = held.get(key);
    if (!h) held.set(key, (h = heldRequest()));
    return h;
  };
  const app = express();
  app.use(inFlightLimit({ max }));
  app.get('/hold/:key', async (req, res) => {
    const { arrived, clientGone, decided } = hold(req.params.key).internals;
    res.on('close', () => {
      if (!res.writableEnded) clientGone.resolve();
    });
    arrived.resolve();
    if (!(await decided.promise)) throw new Error('the held work failed');
    res.json({ key: req.params.key });
  });
  app.get('/stream', (req, res) => {
    res.status(200).type('text/event-stream');
    res.flushHeaders();
    leaveInFlight(req);
    res.write(': open\n\n');
  });
  app.get('/now', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(errorHandler(pino({ level: 'silent' })));
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, hold };
}

describe('the in-flight limit', () => {
  it('refuses requests past the limit with 503 and Retry-After, and serves again once one is answered', async () => {
    const { base, hold } = await startApp(2);
    const a = fetch(`${base}/hold/a`);
    const b = fetch(`${base}/hold/b`);
    await hold('a').arrived;
    await hold('b').arrived;

    const refused = await fetch(`${base}/now`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await refused.json()).toMatchObject({ status: 503, title: 'Service Unavailable' });

    hold('a').answer();
    expect((await a).status).toBe(200);
    expect((await fetch(`${base}/now`)).status).toBe(200);
    hold('b').answer();
    expect((await b).status).toBe(200);
  });

  it('frees the slot of a request whose handler failed', async () => {
    const { base, hold } = await startApp(1);
    const a = fetch(`${base}/hold/a`);
    await hold('a').arrived;
    expect((await fetch(`${base}/now`)).status).toBe(503);
    hold('a').fail();
    expect((await a).status).toBe(500);
    expect((await fetch(`${base}/now`)).status).toBe(200);
  });

  it('keeps the slot of a client that gave up until its handler is done', async () => {
    const { base, hold } = await startApp(1);
    const abort = new AbortController();
    const a = fetch(`${base}/hold/a`, { signal: abort.signal }).catch(() => 'aborted');
    await hold('a').arrived;
    abort.abort();
    expect(await a).toBe('aborted');
    await hold('a').clientGone;
    // Its work still runs: the slot is not free yet.
    expect((await fetch(`${base}/now`)).status).toBe(503);
    hold('a').answer();
    await expect.poll(async () => (await fetch(`${base}/now`)).status, { timeout: 10_000 }).toBe(200);
  });

  it('does not count a long-lived stream once it has left the count', async () => {
    const { base } = await startApp(1);
    const stream = await fetch(`${base}/stream`);
    expect(stream.status).toBe(200);
    expect((await fetch(`${base}/now`)).status).toBe(200);
    await stream.body?.cancel();
  });
});
