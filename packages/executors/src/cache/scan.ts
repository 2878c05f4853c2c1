import type { Redis } from 'ioredis';
import { scanPattern } from './namespace.ts';

/**
 * `promise`, or the signal's reason as soon as it aborts. The command still completes in Redis;
 * its late result or failure is dropped.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

export interface ScanOptions {
  /** SCAN's COUNT: keys Redis looks at per call. */
  count: number;
  /** Keys yielded together (collected over several SCAN calls when matches are sparse). */
  batchSize: number;
  signal: AbortSignal;
}

/**
 * The keys that start with `prefix`, in batches, by SCAN MATCH (never KEYS, which blocks Redis for
 * the whole keyspace). SCAN walks the whole database whatever the pattern, and may return a key
 * twice when Redis resizes its table meanwhile. Checks the signal before every call.
 */
export async function* scanKeys(
  redis: Redis,
  prefix: string,
  options: ScanOptions,
): AsyncGenerator<Buffer[]> {
  const pattern = scanPattern(prefix);
  let cursor = '0';
  let batch: Buffer[] = [];
  do {
    if (options.signal.aborted) throw options.signal.reason;
    const [next, keys] = await untilAborted(
      redis.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', options.count),
      options.signal,
    );
    cursor = next.toString();
    batch.push(...keys);
    while (batch.length >= options.batchSize) {
      yield batch.slice(0, options.batchSize);
      batch = batch.slice(options.batchSize);
    }
  } while (cursor !== '0');
  if (batch.length > 0) yield batch;
}

/** `items` in chunks of `size`. */
export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** The replies of a pipeline, failing on the first error reply unless `tolerate` accepts it. */
export function replies(
  results: [error: Error | null, result: unknown][] | null,
  tolerate: (err: Error) => boolean = () => false,
): Array<{ error: Error | null; value: unknown }> {
  return (results ?? []).map(([error, value]) => {
    if (error && !tolerate(error)) throw error;
    return { error, value };
  });
}
