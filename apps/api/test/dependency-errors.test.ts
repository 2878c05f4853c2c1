import { createServer } from 'node:net';
import { createDb } from '@chronos/db';
import { createRedis } from '@chronos/queue';
import { StorageError } from '@chronos/storage';
import { describe, expect, it } from 'vitest';
import { dependencyUnavailable, type Dependency } from '../src/http/dependency-errors.ts';

/** An Error with extra fields, the way drivers build theirs. */
function error(message: string, fields: Record<string, unknown> = {}, name?: string): Error {
  const e = Object.assign(new Error(message), fields);
  if (name) e.name = name;
  return e;
}

/** What Prisma 7 throws through adapter-pg: the driver's error in `meta.driverAdapterError.cause`. */
function prismaKnown(code: string, cause: Record<string, unknown>): Error {
  const adapter = Object.assign(new Error(String(cause['kind'])), { cause });
  adapter.name = 'DriverAdapterError';
  return error(
    `Invalid invocation: ${code}`,
    { code, clientVersion: '7.10.0', meta: { driverAdapterError: adapter } },
    'PrismaClientKnownRequestError',
  );
}

const pgError = (code: string, message: string) =>
  error(message, { code, severity: 'FATAL', length: 100 }, 'error');

const socketError = (code: string) =>
  error(`connect ${code} 127.0.0.1:5432`, {
    code,
    errno: -111,
    syscall: 'connect',
    address: '127.0.0.1',
    port: 5432,
  });

// Shapes seen with PostgreSQL stopped (`pg_ctl stop -m fast`), a backend killed (-9), PostgreSQL in
// recovery, and Redis shut down, plus the errors that must stay 500s.
const table: [string, unknown, Dependency | null][] = [
  [
    'Prisma P1001, server not reachable',
    prismaKnown('P1001', { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }),
    'database',
  ],
  [
    'Prisma P2010 raw query, DatabaseNotReachable',
    prismaKnown('P2010', { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }),
    'database',
  ],
  [
    'Prisma P2010, 57P01 admin_shutdown',
    prismaKnown('P2010', {
      kind: 'postgres',
      code: '57P01',
      severity: 'FATAL',
      originalCode: '57P01',
      message: 'terminating connection due to administrator command',
    }),
    'database',
  ],
  [
    'Prisma P2039, 57P03 in recovery',
    prismaKnown('P2039', {
      kind: 'postgres',
      code: '57P03',
      severity: 'FATAL',
      originalCode: '57P03',
      message: 'the database system is in recovery mode',
    }),
    'database',
  ],
  [
    'Prisma P2010, 08006 connection failure',
    prismaKnown('P2010', {
      kind: 'postgres',
      code: '08006',
      severity: 'FATAL',
      message: 'connection failure',
    }),
    'database',
  ],
  ['Prisma P1017, ConnectionClosed', prismaKnown('P1017', { kind: 'ConnectionClosed' }), 'database'],
  ['Prisma P1008, SocketTimeout', prismaKnown('P1008', { kind: 'SocketTimeout' }), 'database'],
  [
    'Prisma P2037, too many connections',
    prismaKnown('P2037', {
      kind: 'TooManyConnections',
      originalCode: '53300',
      cause: 'sorry, too many clients already',
    }),
    'database',
  ],
  [
    'Prisma P2024, no pool connection in time',
    error(
      'Timed out fetching a new connection from the connection pool',
      { code: 'P2024', clientVersion: '7.10.0' },
      'PrismaClientKnownRequestError',
    ),
    'database',
  ],
  [
    'Prisma initialization, P1001',
    error(
      "Can't reach database server",
      { errorCode: 'P1001', clientVersion: '7.10.0' },
      'PrismaClientInitializationError',
    ),
    'database',
  ],
  [
    'pg error rethrown by Prisma: Connection terminated unexpectedly',
    error('Connection terminated unexpectedly', { clientVersion: '7.10.0' }),
    'database',
  ],
  [
    'pg DatabaseError 57P01',
    pgError('57P01', 'terminating connection due to administrator command'),
    'database',
  ],
  [
    'pg DatabaseError 57P02 crash_shutdown',
    pgError('57P02', 'terminating connection because of crash of another server process'),
    'database',
  ],
  ['pg DatabaseError 08P01 protocol violation', pgError('08P01', 'protocol violation'), 'database'],
  ['pg-pool connection timeout', error('timeout exceeded when trying to connect'), 'database'],
  [
    'pg-pool: connection timeout with a cause',
    error('Connection terminated due to connection timeout', {
      cause: error('Connection terminated unexpectedly'),
    }),
    'database',
  ],
  [
    'a socket error inside a Prisma error',
    error('x', { clientVersion: '7.10.0', cause: socketError('ECONNREFUSED') }),
    'database',
  ],
  [
    'ECONNREFUSED on every address (AggregateError) inside a Prisma error',
    Object.assign(new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')], ''), {
      clientVersion: '7.10.0',
    }),
    'database',
  ],
  [
    'a database failure wrapped by our own code',
    new Error('could not start the run', { cause: prismaKnown('P1001', { kind: 'DatabaseNotReachable' }) }),
    'database',
  ],
  [
    'ioredis, offline queue disabled',
    error("Stream isn't writeable and enableOfflineQueue options is false"),
    'redis',
  ],
  ['ioredis, connection closed', error('Connection is closed.'), 'redis'],
  [
    'ioredis MaxRetriesPerRequestError',
    error('Reached the max retries per request limit (which is 1).', {}, 'MaxRetriesPerRequestError'),
    'redis',
  ],
  [
    'ioredis MULTI failing while disconnected',
    error("Stream isn't writeable and enableOfflineQueue options is false", { previousErrors: [] }),
    'redis',
  ],
  [
    'ioredis pipeline with an inner connection error',
    error(
      'EXECABORT Transaction discarded',
      { previousErrors: [error('Connection is closed.')] },
      'ReplyError',
    ),
    'redis',
  ],
  [
    'Redis loading its data',
    error('LOADING Redis is loading the dataset in memory', {}, 'ReplyError'),
    'redis',
  ],
  [
    'Redis replica during failover',
    error("READONLY You can't write against a read only replica.", {}, 'ReplyError'),
    'redis',
  ],
  // Not a dependency outage: a retry would not help, or the fault is elsewhere.
  [
    'Prisma P2002 unique violation',
    prismaKnown('P2002', { kind: 'UniqueConstraintViolation', constraint: { fields: ['email'] } }),
    null,
  ],
  ['Prisma P2021 missing table', prismaKnown('P2021', { kind: 'TableDoesNotExist', table: 'users' }), null],
  [
    'Prisma P1000 bad credentials',
    error(
      'Authentication failed',
      { errorCode: 'P1000', clientVersion: '7.10.0' },
      'PrismaClientInitializationError',
    ),
    null,
  ],
  [
    'Prisma P2010, 42601 syntax error',
    prismaKnown('P2010', { kind: 'postgres', code: '42601', severity: 'ERROR', message: 'syntax error' }),
    null,
  ],
  ['pg DatabaseError 23505', pgError('23505', 'duplicate key value violates unique constraint'), null],
  ['pg failing to connect: a bare ECONNREFUSED', socketError('ECONNREFUSED'), 'database'],
  [
    'object storage down: its StorageError wraps the socket error, and is not the database',
    new StorageError('S3 at http://127.0.0.1:4568: put failed: connect ECONNREFUSED', {
      cause: socketError('ECONNREFUSED'),
    }),
    null,
  ],
  [
    'Redis WRONGTYPE',
    error('WRONGTYPE Operation against a key holding the wrong kind of value', {}, 'ReplyError'),
    null,
  ],
  ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')"), null],
  ['a string', 'Connection is closed.', null],
  ['null', null, null],
  ['undefined', undefined, null],
];

describe('dependencyUnavailable', () => {
  it.each(table)('%s → %s', (_name, err, expected) => {
    expect(dependencyUnavailable(err)).toBe(expected);
  });

  it('ends on a cycle of causes', () => {
    const a = error('a');
    const b = error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect(dependencyUnavailable(a)).toBeNull();
  });
});

/** A TCP port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('dependencyUnavailable on what the real drivers throw', () => {
  it('names the database for a Prisma query to a port where no PostgreSQL listens', async () => {
    const db = createDb(`postgresql://postgres@127.0.0.1:${await closedPort()}/chronos`);
    try {
      const err = await db.user.count().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeDefined();
      expect(dependencyUnavailable(err)).toBe('database');
      const raw = await db.$queryRaw`SELECT 1`.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(dependencyUnavailable(raw)).toBe('database');
    } finally {
      await db.$disconnect();
    }
  });

  it('names Redis for a command to a Redis that does not answer', async () => {
    const redis = createRedis(`redis://127.0.0.1:${await closedPort()}`, { failFast: true });
    redis.on('error', () => {});
    try {
      const err = await redis.get('x').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeDefined();
      expect(dependencyUnavailable(err)).toBe('redis');
    } finally {
      redis.disconnect();
    }
  });
});
