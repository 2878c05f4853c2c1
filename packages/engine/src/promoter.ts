import type { JobTypeName } from '@chronos/core';
import type { QueueSet } from '@chronos/queue';
import { Job } from 'bullmq';

/**
 * Promotes delayed BullMQ jobs at their exact due time. BullMQ's own promotion of delayed jobs adds
 * tens of milliseconds of lateness; the scheduler that enqueued a slot knows its due time and moves it
 * to the wait list then, so a free worker starts it within a few milliseconds. BullMQ's delay stays
 * the fallback (this process stopping, a timer lost): nothing depends on the promotion happening.
 */
export function createPromoter(queues: QueueSet, onError: (err: unknown) => void) {
  /** One timer per distinct due instant (cron slots of many jobs share them). */
  const timers = new Map<number, { timer: NodeJS.Timeout; keys: { type: JobTypeName; key: string }[] }>();

  async function promote(keys: { type: JobTypeName; key: string }[]): Promise<void> {
    await Promise.all(
      keys.map(async ({ type, key }) => {
        const queue = queues.get(type);
        if (!queue) return;
        try {
          // A bare Job handle is enough: promote() runs one script on the queue by id.
          await new Job(queue, 'run', {}, {}, key).promote();
        } catch (err) {
          // Already promoted, taken, or removed: nothing to do.
          if (!/not in the delayed state|does not exist|Missing key/i.test(String((err as Error)?.message)))
            onError(err);
        }
      }),
    );
  }

  return {
    /** Arms a promotion for each slot due within `horizonMs` (local clock = database clock − skew). */
    schedule(
      items: readonly { type: JobTypeName; key: string; dueAt: Date }[],
      skewMs: number,
      horizonMs: number,
    ) {
      const now = Date.now();
      for (const it of items) {
        const localDue = it.dueAt.getTime() - skewMs;
        const delay = localDue - now;
        if (delay <= 0 || delay > horizonMs) continue;
        let entry = timers.get(localDue);
        if (!entry) {
          const keys: { type: JobTypeName; key: string }[] = [];
          // +1 ms: a timer may fire a hair early; a slot must never start before its time.
          const timer = setTimeout(() => {
            timers.delete(localDue);
            void promote(keys);
          }, delay + 1);
          timer.unref();
          entry = { timer, keys };
          timers.set(localDue, entry);
        }
        entry.keys.push({ type: it.type, key: it.key });
      }
    },
    /** Drops pending promotions whose slots no longer apply (BullMQ ignores promoting a removed job anyway). */
    clear() {
      for (const { timer } of timers.values()) clearTimeout(timer);
      timers.clear();
    },
    get pending() {
      return timers.size;
    },
  };
}
