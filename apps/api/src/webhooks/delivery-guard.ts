import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { TIMESTAMP_TOLERANCE_SECONDS } from './signature.ts';

/**
 * How long a delivery is remembered: a signed request is accepted while its timestamp is within the
 * tolerance either side of now, so remembering it for twice that (plus a minute of clock skew between
 * replicas) covers every moment it could be replayed.
 */
export const DELIVERY_MEMORY_SECONDS = 2 * TIMESTAMP_TOLERANCE_SECONDS + 60;

const RATE_WINDOW_MS = 60_000;

const digest = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 32);

/**
 * Replay and rate state of webhook deliveries, in Redis under REDIS_PREFIX so every API replica
 * shares it.
 */
export function createDeliveryGuard(redis: Redis, prefix: string) {
  const deliveryKey = (hookId: string, id: string) => `${prefix}:webhook:delivery:${hookId}:${digest(id)}`;
  const rateKey = (hookId: string) => `${prefix}:webhook:rate:${hookId}`;

  return {
    /**
     * Claims each of `ids` (the signature, and the sender's delivery id when given) with SET NX.
     * Returns the claimed keys (to `release` if the delivery is not accepted after all), or null when
     * any id was seen before: a replay. The signature is always one of the ids, because the delivery
     * id header is not signed and could be changed by whoever replays a captured request.
     */
    async claim(hookId: string, ids: readonly string[]): Promise<string[] | null> {
      const claimed: string[] = [];
      for (const id of ids) {
        const key = deliveryKey(hookId, id);
        const ok = await redis.set(key, '1', 'EX', DELIVERY_MEMORY_SECONDS, 'NX');
        if (ok === null) return null;
        claimed.push(key);
      }
      return claimed;
    },

    /** Forgets claimed deliveries, so the sender may retry one that was refused (429, paused job). */
    async release(keys: readonly string[]): Promise<void> {
      if (keys.length > 0) await redis.del(...keys);
    },

    /**
     * Counts one delivery in the webhook's current one-minute window (which starts with its first
     * delivery). Returns the seconds until the window ends when the limit is exceeded, else null.
     */
    async overLimit(hookId: string, limitPerMinute: number): Promise<number | null> {
      const key = rateKey(hookId);
      const replies = (await redis.multi().incr(key).pexpire(key, RATE_WINDOW_MS, 'NX').pttl(key).exec()) as [
        Error | null,
        number,
      ][];
      const [count, , ttl] = replies.map(([err, value]) => {
        if (err) throw err;
        return value;
      });
      if ((count ?? 0) <= limitPerMinute) return null;
      return Math.max(1, (ttl ?? RATE_WINDOW_MS) / 1000);
    },
  };
}

export type DeliveryGuard = ReturnType<typeof createDeliveryGuard>;
