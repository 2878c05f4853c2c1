// Which failures mean "PostgreSQL or Redis cannot be reached right now" (a 503 the client may retry)
// rather than a fault of ours (a 500). The shapes were taken from what the drivers really throw with
// the server stopped, killed or restarting: see test/dependency-errors.test.ts for the table.
import { isDatabaseUnavailable } from '@chronos/db';
import { StorageError } from '@chronos/storage';

/** A service the API cannot answer without. */
export type Dependency = 'database' | 'redis';

/** ioredis messages for commands sent while the connection is down (`enableOfflineQueue: false`). */
const REDIS_MESSAGES = new Set([
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Connection is closed.',
]);

/** Redis replies of a server that is up but cannot serve yet (loading its data, failing over). */
const REDIS_BUSY_REPLY = /^(LOADING|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b/;

type Fields = Record<string, unknown>;

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

function redisSign(o: Fields): boolean {
  if (o['name'] === 'MaxRetriesPerRequestError') return true;
  const message = typeof o['message'] === 'string' ? o['message'] : '';
  if (REDIS_MESSAGES.has(message)) return true;
  return o['name'] === 'ReplyError' && REDIS_BUSY_REPLY.test(message);
}

/**
 * The dependency whose unavailability `err` reports, or null when it is anything else (a bug, bad
 * input, a constraint, a bad password in DATABASE_URL — none of which a retry fixes). The database
 * half is `isDatabaseUnavailable` of @chronos/db, the definition every Chronos process shares.
 */
export function dependencyUnavailable(err: unknown): Dependency | null {
  for (const o of related(err)) {
    if (redisSign(o)) return 'redis';
    // Object storage wraps its failures, socket errors included: those are not the database's.
    if (o instanceof StorageError) return null;
  }
  return isDatabaseUnavailable(err) ? 'database' : null;
}
