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

  return {
    /** @throws HttpError 429 when the account or the IP is over its limit. */
    async check(email: string, ip: string): Promise<void> {
      const replies = (await redis
        .multi()
        .get(accountKey(email))
        .pttl(accountKey(email))
        .get(ipKey(ip))
        .pttl(ipKey(ip))
        .exec()) as [Error | null, string | number | null][];
      const [acct, acctTtl, byIp, ipTtl] = replies.map(([err, value]) => {
        if (err) throw err;
        return value;
      });
      if (Number(acct ?? 0) >= opts.maxFailures)
        throw tooManyRequests(
          'Too many failed sign-ins for this account; try again later',
          Number(acctTtl) / 1000,
        );
      if (Number(byIp ?? 0) >= ipMax)
        throw tooManyRequests(
          'Too many failed sign-ins from this address; try again later',
          Number(ipTtl) / 1000,
        );
    },
    async recordFailure(email: string, ip: string): Promise<void> {
      await redis
        .multi()
        .incr(accountKey(email))
        .expire(accountKey(email), opts.windowSeconds, 'NX')
        .incr(ipKey(ip))
        .expire(ipKey(ip), opts.windowSeconds, 'NX')
        .exec();
    },
    async recordSuccess(email: string): Promise<void> {
      await redis.del(accountKey(email));
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
