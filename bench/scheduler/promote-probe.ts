// Times the scheduler's promotions from inside its process: the engine's promoter calls
// `Job.prototype.promote` (the same bullmq module instance as this package's), so wrapping it shows
// when each promotion timer fired and how long the Redis round trip took, without touching the engine.

import { Job } from 'bullmq';

export interface PromoteCall {
  /** Local time promote() was called (the promoter's timer fired). */
  called: number;
  /** Local time it returned. */
  returned: number;
}

export interface PromoteProbe {
  calls: ReadonlyMap<string, PromoteCall>;
  /** Puts the original method back. */
  restore(): void;
}

export function probePromotions(): PromoteProbe {
  const original = Job.prototype.promote;
  const calls = new Map<string, PromoteCall>();
  Job.prototype.promote = async function promote(this: Job): Promise<void> {
    const called = Date.now();
    try {
      return await original.call(this);
    } finally {
      if (this.id && !calls.has(this.id)) calls.set(this.id, { called, returned: Date.now() });
    }
  };
  return {
    calls,
    restore() {
      Job.prototype.promote = original;
    },
  };
}
