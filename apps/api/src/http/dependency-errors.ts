// Which failures mean "PostgreSQL or Redis cannot be reached right now" (a 503 the client may retry)
// rather than a fault of ours (a 500). The shapes were taken from what the drivers really throw with
// the server stopped, killed or restarting: see test/dependency-errors.test.ts for the table.

/** A service the API cannot answer without. */
export type Dependency = 'database' | 'redis';

/**
 * Prisma error codes of an unreachable or saturated database: can't reach (P1001), timed out
 * reaching (P1002), operation timed out (P1008), server closed the connection (P1017), no pool
 * connection in time (P2024), too many connections (P2037).
 */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);

/** `@prisma/adapter-pg`'s `DriverAdapterError.cause.kind` values that mean the same. */
const ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);

/**
 * SQLSTATEs of a server going away or not taking connections: class 08 (connection exception),
 * 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up, in recovery),
 * 53300 too_many_connections.
 */
const isUnavailableSqlState = (code: string) =>
  code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';

/** `pg` and `pg-pool` messages for a connection that broke or never came (they carry no code). */
const PG_MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Query read timeout',
]);

/** Socket failures; they name no service, so they count only inside an error Prisma wrapped. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** ioredis messages for commands sent while the connection is down (`enableOfflineQueue: false`). */
const REDIS_MESSAGES = new Set([
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Connection is closed.',
]);

/** Redis replies of a server that is up but cannot serve yet (loading its data, failing over). */
const REDIS_BUSY_REPLY = /^(LOADING|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b/;

type Fields = Record<string, unknown>;

const str = (o: Fields, key: string): string | undefined => (typeof o[key] === 'string' ? o[key] : undefined);

/** The error, its causes, Prisma's `meta.driverAdapterError`, AggregateError's and ioredis' inner errors. */
function* related(err: unknown): Generator<Fields> {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0 && seen.size < 32) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const o = e as Fields;
    yield o;
    queue.push(o['cause']);
    const meta = o['meta'];
    if (meta && typeof meta === 'object') queue.push((meta as Fields)['driverAdapterError']);
    for (const key of ['errors', 'previousErrors']) {
      const inner = o[key];
      if (Array.isArray(inner)) queue.push(...inner);
    }
  }
}

function databaseSign(o: Fields): boolean {
  const prismaCode = str(o, 'code') ?? str(o, 'errorCode');
  if (prismaCode && PRISMA_CODES.has(prismaCode)) return true;
  const kind = str(o, 'kind');
  if (kind && ADAPTER_KINDS.has(kind)) return true;
  // A PostgreSQL error: pg's DatabaseError, or adapter-pg's cause (`kind: 'postgres'`, `originalCode`).
  for (const key of ['code', 'originalCode']) {
    const code = str(o, key);
    if (code && /^[0-9A-Z]{5}$/.test(code) && (o['severity'] !== undefined || o['kind'] !== undefined))
      if (isUnavailableSqlState(code)) return true;
  }
  const message = str(o, 'message');
  return message !== undefined && PG_MESSAGES.has(message);
}

function redisSign(o: Fields): boolean {
  if (o['name'] === 'MaxRetriesPerRequestError') return true;
  const message = str(o, 'message') ?? '';
  if (REDIS_MESSAGES.has(message)) return true;
  return o['name'] === 'ReplyError' && REDIS_BUSY_REPLY.test(message);
}

/** Prisma marks its errors with `clientVersion` (also a driver error it rethrows as is). */
const prismaWrapped = (o: Fields) =>
  'clientVersion' in o || /^PrismaClient|^DriverAdapterError$/.test(str(o, 'name') ?? '');

/**
 * The dependency whose unavailability `err` reports, or null when it is anything else (a bug, bad
 * input, a constraint, a bad password in DATABASE_URL — none of which a retry fixes).
 */
export function dependencyUnavailable(err: unknown): Dependency | null {
  let socket = false;
  let prisma = false;
  for (const o of related(err)) {
    if (databaseSign(o)) return 'database';
    if (redisSign(o)) return 'redis';
    if (prismaWrapped(o)) prisma = true;
    const code = str(o, 'code');
    if (code && SOCKET_CODES.has(code)) socket = true;
  }
  return socket && prisma ? 'database' : null;
}
