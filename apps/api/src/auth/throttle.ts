import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { tooManyRequests } from '../http/errors.ts';

export interface LoginThrottleOptions {
  prefix: string;
  /** Failures per account in the window; a client IP may fail 4× as often (many users behind one NAT). */
  maxFailures: number;
  windowSeconds: number;
}

/**
 * Failed sign-ins counted per account and per client IP in Redis, so every API replica sees the
 * same counts. Over the limit, sign-in answers 429 with Retry-After until the window ends — even
 * with the right password, so guessing cannot continue by waiting for a lucky hit.
 */
export function createLoginThrottle(redis: Redis, opts: LoginThrottleOptions) {
  const accountKey = (email: string) =>
    `${opts.prefix}:login-failures:account:${createHash('sha256').update(email).digest('hex').slice(0, 32)}`;
  const ipKey = (ip: string) => `${opts.prefix}:login-failures:ip:${ip}`;
  const ipMax = opts.maxFailures * 4;
  /** Takes one attempt back from each key that still exists (never creates a key without a TTL). */
  const takeBack = (...keys: string[]) =>
    redis.eval(
      `for _, k in ipairs(KEYS) do
         if redis.call('EXISTS', k) == 1 and redis.call('DECR', k) <= 0 then redis.call('DEL', k) end
       end
       return 0`,
      keys.length,
      ...keys,
    );

  return {
    /**
     * Counts this attempt as a failure before the password is checked — so parallel attempts cannot
     * all pass one check — and refuses it over the limit. `recordSuccess` takes it back.
     * @throws HttpError 429 when the account or the IP is over its limit.
     */
    async reserve(email: string, ip: string): Promise<void> {
      const replies = (await redis
        .multi()
        .incr(accountKey(email))
        .expire(accountKey(email), opts.windowSeconds, 'NX')
        .pttl(accountKey(email))
        .incr(ipKey(ip))
        .expire(ipKey(ip), opts.windowSeconds, 'NX')
        .pttl(ipKey(ip))
        .exec()) as [Error | null, number][];
      const [acct, , acctTtl, byIp, , ipTtl] = replies.map(([err, value]) => {
        if (err) throw err;
        return value;
      });
      // A refused attempt checks no password: it does not count.
      const over = Number(acct) > opts.maxFailures || Number(byIp) > ipMax;
      if (over) await takeBack(accountKey(email), ipKey(ip));
      if (Number(acct) > opts.maxFailures)
        throw tooManyRequests(
          'Too many failed sign-ins for this account; try again later',
          Number(acctTtl) / 1000,
        );
      if (Number(byIp) > ipMax)
        throw tooManyRequests(
          'Too many failed sign-ins from this address; try again later',
          Number(ipTtl) / 1000,
        );
    },
    /** The attempt succeeded: the account starts afresh, and the attempt does not count for the IP. */
    async recordSuccess(email: string, ip: string): Promise<void> {
      await redis.eval(
        `redis.call('DEL', KEYS[1])
         if redis.call('EXISTS', KEYS[2]) == 1 and redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
         return 0`,
        2,
        accountKey(email),
        ipKey(ip),
      );
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
