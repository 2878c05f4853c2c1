import type { Redis } from 'ioredis';

/**
 * Each scheduler's last measured clock skew (database clock minus its own, ms), shared through
 * Redis so the API's /metrics can report every scheduler's skew without reaching their ports.
 * One hash per deployment: field = scheduler instance id, value = `<skewMs>|<reportedAtMs>`.
 */
export function schedulerSkewKey(prefix: string): string {
  return `${prefix}:scheduler-skew`;
}

/** Reports from longer ago than this are a stopped or stuck scheduler: left out (and removed). */
const SKEW_REPORT_MAX_AGE_MS = 60_000;

export async function reportSchedulerSkew(
  redis: Redis,
  prefix: string,
  instanceId: string,
  skewMs: number,
): Promise<void> {
  await redis.hset(schedulerSkewKey(prefix), instanceId, `${skewMs}|${Date.now()}`);
}

export async function forgetSchedulerSkew(redis: Redis, prefix: string, instanceId: string): Promise<void> {
  await redis.hdel(schedulerSkewKey(prefix), instanceId);
}

/**
 * The fresh skew reports by scheduler instance. Stale or unreadable ones (a scheduler that died
 * without withdrawing its report: instance ids are host-pid, never reused) are removed.
 */
export async function readSchedulerSkews(
  redis: Redis,
  prefix: string,
  now = Date.now(),
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const stale: string[] = [];
  for (const [instance, value] of Object.entries(await redis.hgetall(schedulerSkewKey(prefix)))) {
    const [skew, at] = value.split('|').map(Number);
    if (Number.isFinite(skew) && Number.isFinite(at) && now - (at as number) <= SKEW_REPORT_MAX_AGE_MS)
      out.set(instance, skew as number);
    else stale.push(instance);
  }
  if (stale.length > 0) await redis.hdel(schedulerSkewKey(prefix), ...stale);
  return out;
}
