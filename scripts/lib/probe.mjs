// Wire-level probes for PostgreSQL, Redis and S3, using only Node's built-in modules so the launcher
// can run them before any dependency is installed.
import { Buffer } from 'node:buffer';
import { request } from 'node:http';
import { connect } from 'node:net';

/**
 * Opens a TCP connection, writes `request` and waits for the first bytes of the answer.
 * Resolves to `{ state: 'refused' }` when nothing accepts the connection, `{ state: 'silent' }`
 * when something accepts it but does not answer in time, else `{ state: 'answered', data }`.
 */
function exchange(host, port, request, timeoutMs) {
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    const socket = connect({ host, port });
    const finish = (result) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ state: connected ? 'silent' : 'refused' }), timeoutMs);
    socket.once('connect', () => {
      connected = true;
      socket.write(request);
    });
    socket.once('data', (data) => finish({ state: 'answered', data }));
    socket.once('error', () => finish({ state: connected ? 'silent' : 'refused' }));
    socket.once('close', () => finish({ state: connected ? 'silent' : 'refused' }));
  });
}

// SSLRequest: length 8, code 80877103. Every PostgreSQL server answers it with one byte, 'S' or 'N'.
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * Is PostgreSQL answering on host:port?
 * @returns {Promise<'postgres' | 'other' | 'none'>} 'other' when something else holds the port.
 */
export async function probePostgres(host, port, timeoutMs = 2000) {
  const r = await exchange(host, port, SSL_REQUEST, timeoutMs);
  if (r.state === 'refused') return 'none';
  if (r.state === 'answered' && r.data.length === 1 && (r.data[0] === 0x53 || r.data[0] === 0x4e))
    return 'postgres';
  return 'other';
}

function startupMessage(user, database) {
  const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + params.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, params]);
}

/**
 * Does PostgreSQL on host:port accept sessions (not merely connections)? A server that is still
 * starting answers the startup message with an error ('E'); a ready one asks for authentication
 * or grants it ('R').
 */
export async function postgresAcceptsSessions(host, port, user = 'postgres', timeoutMs = 2000) {
  const r = await exchange(host, port, startupMessage(user, 'postgres'), timeoutMs);
  return r.state === 'answered' && r.data[0] === 0x52;
}

/**
 * Is Redis answering on host:port?
 * @returns {Promise<'redis' | 'redis-auth' | 'other' | 'none'>} 'redis-auth' when it wants a password.
 */
export async function probeRedis(host, port, timeoutMs = 2000) {
  const r = await exchange(host, port, Buffer.from('PING\r\n'), timeoutMs);
  if (r.state === 'refused') return 'none';
  if (r.state !== 'answered') return 'other';
  const text = r.data.toString('latin1');
  if (text.startsWith('+PONG')) return 'redis';
  if (text.startsWith('-NOAUTH') || text.startsWith('-WRONGPASS')) return 'redis-auth';
  if (text.startsWith('-')) return 'redis';
  return 'other';
}

/**
 * Is an S3 server answering plain HTTP on host:port? An unsigned `GET /` gets the bucket list from
 * s3rver and an S3 error document (`<Error><Code>AccessDenied…`) from MinIO or AWS.
 * @returns {Promise<'s3' | 'other' | 'none'>} 'other' when something else holds the port.
 */
export function probeS3(host, port, timeoutMs = 2000) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (result) => {
      if (settled) return;
      settled = true;
      req.destroy();
      resolve(result);
    };
    const req = request({ host, port, path: '/', method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
        if (body.length > 8192) done('other');
      });
      res.on('end', () => done(/<ListAllMyBucketsResult[\s>]|<Error>\s*<Code>/.test(body) ? 's3' : 'other'));
      res.on('error', () => done('other'));
    });
    req.on('timeout', () => done('other'));
    req.on('error', (err) => done(err.code === 'ECONNREFUSED' ? 'none' : 'other'));
    req.end();
  });
}

/** Does anything accept TCP connections on host:port? */
export function portTaken(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (taken) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(taken);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Calls `check` until it returns a truthy value or `deadlineMs` passes; `abort` (optional) is
 * called between attempts and may throw to give up early (e.g. the server process died).
 */
export async function waitUntil(check, { deadlineMs, intervalMs = 200, abort } = {}) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    abort?.();
    const value = await check();
    if (value) return value;
    if (Date.now() >= until) return undefined;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
