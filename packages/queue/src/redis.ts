import { Redis } from 'ioredis';

/** Options for Redis connections used by BullMQ. */
export interface RedisOptions {
  /** Connection name shown by `CLIENT LIST`. */
  name?: string;
  /**
   * Fail commands at once while disconnected instead of queueing them (for producers such as the
   * API and the scheduler; BullMQ workers need `false`).
   * @defaultValue false
   */
  failFast?: boolean;
}

/**
 * A Redis connection suitable for BullMQ (`maxRetriesPerRequest: null` for blocking workers).
 * Nothing connects before the first command.
 */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: opts.failFast ? 1 : null,
    enableOfflineQueue: !opts.failFast,
    connectionName: opts.name,
  });
}

/** Connects and checks the server answers; throws a clear error naming the URL otherwise. */
export async function pingRedis(redis: Redis, url: string): Promise<void> {
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(`Redis at ${url} is not reachable: ${(err as Error).message}`, { cause: err });
  }
}
