// Is an error "PostgreSQL cannot be reached right now" (a restart, a failover, a network cut), as
// opposed to a fault of the statement? One definition for every process: the API answers 503 for
// it, the worker waits and records again, the scheduler's tick tries again.

/** Socket errors of a connection that could not be made or broke. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);

/**
 * SQLSTATEs of a server that is going away, starting or full: class 08 (connection exception),
 * 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 53300 too_many_connections.
 */
function unavailableSqlState(code: string): boolean {
  return /^08[0-9A-Z]{3}$/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code);
}

/** Prisma's codes for a server it cannot reach or that closed the connection. */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024']);

/** `@prisma/driver-adapter-utils` error kinds of the same. */
const ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TooManyConnections',
]);

/** Messages of `pg` errors that carry no code. */
const MESSAGES = [
  /Connection terminated/i,
  /Client has encountered a connection error and is not queryable/i,
  /Client was closed and is not queryable/i,
  /timeout exceeded when trying to connect/i,
  /Can't reach database server/i,
  /Server has closed the connection/i,
];

interface ErrorLike {
  code?: unknown;
  kind?: unknown;
  message?: unknown;
  cause?: unknown;
  meta?: { driverAdapterError?: unknown };
  errors?: unknown;
}

/**
 * True when `err` (or what it wraps: `cause`, Prisma's `meta.driverAdapterError`, an
 * AggregateError's `errors`) says PostgreSQL is unreachable, restarting or refusing connections.
 * A statement's own failure (a constraint, a syntax error, a lock timeout) is false.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const visit = (e: unknown): boolean => {
    if (e === null || typeof e !== 'object' || seen.has(e)) return false;
    seen.add(e);
    const x = e as ErrorLike;
    if (typeof x.code === 'string') {
      if (SOCKET_CODES.has(x.code) || PRISMA_CODES.has(x.code) || unavailableSqlState(x.code)) return true;
    }
    if (typeof x.kind === 'string') {
      if (ADAPTER_KINDS.has(x.kind)) return true;
      if (x.kind === 'postgres' && typeof x.code === 'string' && unavailableSqlState(x.code)) return true;
    }
    if (typeof x.message === 'string' && MESSAGES.some((m) => m.test(x.message as string))) return true;
    if (visit(x.cause) || visit(x.meta?.driverAdapterError)) return true;
    return Array.isArray(x.errors) && x.errors.some(visit);
  };
  return visit(err);
}
