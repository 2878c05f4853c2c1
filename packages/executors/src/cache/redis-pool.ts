import { RetryableJobError, rejectAfter } from '@chronos/core';
import { Redis, type RedisOptions } from 'ioredis';
import type { RedisTarget } from './redis-target.ts';

/**
 * Opens a connection from complete client options (address, credentials, db, TLS, timeouts); tests
 * wrap the real client to watch the commands it sends.
 */
export type RedisConnect = (options: RedisOptions) => Redis;

export interface RedisPoolOptions {
  /** @defaultValue `new Redis(options)` */
  connect?: RedisConnect;
  /** An unused connection is closed after this long. @defaultValue 300_000 */
  idleTimeoutMs?: number;
  /** @defaultValue 10_000 */
  connectTimeoutMs?: number;
}

interface PoolEntry {
  redis: Redis;
  users: number;
  idleTimer: NodeJS.Timeout | undefined;
}

/** A borrowed connection; `release()` once the run is done with it. */
export interface RedisLease {
  redis: Redis;
  release(): void;
}

/**
 * One connection per cache target (URL, database and dialled address), opened on first use, shared
 * by concurrent runs (ioredis pipelines their commands), closed when idle or by `close()`. A
 * connection that gives up reconnecting leaves the pool; the next run opens a new one.
 */
export class RedisPool {
  private readonly entries = new Map<string, PoolEntry>();
  private readonly connect: RedisConnect;
  private readonly idleTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private closed = false;

  constructor(options: RedisPoolOptions = {}) {
    this.connect = options.connect ?? ((o) => new Redis(o));
    this.idleTimeoutMs = options.idleTimeoutMs ?? 300_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  /** Connections currently open, for tests and metrics. */
  get size(): number {
    return this.entries.size;
  }

  acquire(target: RedisTarget): RedisLease {
    if (this.closed) throw new RetryableJobError('the cache executor is closed', 'CACHE_UNAVAILABLE');
    let entry = this.entries.get(target.id);
    if (!entry) {
      const redis = this.connect({
        connectTimeout: this.connectTimeoutMs,
        // A run fails fast (and is retried by Chronos) rather than waiting out a long outage.
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => (times > 3 ? null : Math.min(times * 200, 1000)),
        connectionName: 'chronos-cache',
        ...target.options,
      });
      // Failures reach the run through its commands; an unhandled 'error' event would crash the worker.
      redis.on('error', () => {});
      const created: PoolEntry = { redis, users: 0, idleTimer: undefined };
      redis.once('end', () => {
        if (this.entries.get(target.id) === created) this.entries.delete(target.id);
        clearTimeout(created.idleTimer);
      });
      this.entries.set(target.id, created);
      entry = created;
    }
    const e = entry;
    clearTimeout(e.idleTimer);
    e.idleTimer = undefined;
    e.users++;
    let released = false;
    return {
      redis: e.redis,
      release: () => {
        if (released) return;
        released = true;
        e.users--;
        if (e.users > 0 || this.closed) return;
        e.idleTimer = setTimeout(() => {
          if (this.entries.get(target.id) === e) this.entries.delete(target.id);
          void quit(e.redis);
        }, this.idleTimeoutMs);
        e.idleTimer.unref();
      },
    };
  }

  /** Closes every connection (QUIT, or a hard disconnect when Redis does not answer). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      all.map((e) => {
        clearTimeout(e.idleTimer);
        return quit(e.redis);
      }),
    );
  }
}

async function quit(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await rejectAfter(redis.quit(), 2000, 'QUIT timed out');
  } catch {
    redis.disconnect();
  }
}
