import type { RunContext } from '@chronos/engine';
import { runContextKey, type Storage } from '@chronos/storage';
import type { Logger } from 'pino';

export interface ContextWriter {
  /** Queues a run's context document for object storage; never blocks the run, never throws. */
  write(doc: RunContext): void;
  /** Resolves when every queued document is written (or given up on): call before exiting. */
  flush(): Promise<void>;
  /** Documents waiting or being written. */
  readonly pending: number;
}

export interface ContextWriterOptions {
  /** Parallel uploads. @defaultValue 8 */
  concurrency?: number;
  /**
   * Most documents held in memory while storage lags; beyond it the oldest are dropped (the run
   * row in PostgreSQL stays the record; the loss is logged). @defaultValue 10 000
   */
  maxQueued?: number;
}

/**
 * Writes run context documents (`runs/<id>/context.json`) behind the runs: the run's outcome is
 * recorded in PostgreSQL first, the document follows a moment later, so a slow or briefly
 * unreachable object store never slows or fails a run. Each upload is tried twice.
 */
export function createContextWriter(
  storage: Storage,
  log: Logger,
  opts: ContextWriterOptions = {},
): ContextWriter {
  const concurrency = opts.concurrency ?? 8;
  const maxQueued = opts.maxQueued ?? 10_000;
  const queue: RunContext[] = [];
  let active = 0;
  let dropped = 0;
  let idle: (() => void)[] = [];

  async function upload(doc: RunContext): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await storage.putJson(runContextKey(doc.runId), doc);
        return;
      } catch (err) {
        if (attempt >= 2) {
          log.warn({ err, runId: doc.runId }, 'could not store the run context document');
          return;
        }
      }
    }
  }

  function pump(): void {
    while (active < concurrency && queue.length > 0) {
      const doc = queue.shift() as RunContext;
      active++;
      void upload(doc).finally(() => {
        active--;
        pump();
      });
    }
    if (active === 0 && queue.length === 0) {
      const waiting = idle;
      idle = [];
      for (const resolve of waiting) resolve();
    }
  }

  return {
    write(doc) {
      queue.push(doc);
      if (queue.length > maxQueued) {
        queue.shift();
        if (dropped++ % 1000 === 0)
          log.warn(
            { dropped, maxQueued },
            'object storage is lagging: dropping the oldest run context documents',
          );
      }
      pump();
    },
    flush() {
      if (active === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idle.push(resolve));
    },
    get pending() {
      return queue.length + active;
    },
  };
}
