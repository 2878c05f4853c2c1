// Times every pipeline sent on the scheduler's Redis connection. The engine's bulk enqueues
// (`addBulk`: one pipeline per claimed batch) and its reconciler (one pipeline of EXISTS per page of
// 2 000 QUEUED runs, every 5 s) both use it, and they share the connection with the promoter's
// promote() calls, so a long pipeline delays the promotions queued behind it.

import type { Redis } from 'ioredis';
import { summarize } from './measure.ts';

export interface PipelineCall {
  start: number;
  end: number;
  commands: number;
}

/** Wraps `redis.pipeline` of this one connection (not the class); returns what it records. */
export function probePipelines(redis: Redis): PipelineCall[] {
  const calls: PipelineCall[] = [];
  const original = redis.pipeline.bind(redis);
  redis.pipeline = ((commands?: unknown[][]) => {
    const p = original(commands);
    const exec = p.exec.bind(p);
    p.exec = (async (...args: Parameters<typeof exec>) => {
      const start = Date.now();
      const commands = p.length;
      try {
        return await exec(...args);
      } finally {
        calls.push({ start, end: Date.now(), commands });
      }
    }) as typeof p.exec;
    return p;
  }) as typeof redis.pipeline;
  return calls;
}

/** Pipelines of at least this many commands are the reconciler's pages. */
const BIG = 1_000;
/** A slot due this long after a big pipeline started counts as "behind" it. */
const SHADOW_MS = 250;

/**
 * The big pipelines inside the window and the lateness of slots due while one ran (or just after)
 * against the rest.
 */
export function pipelineText(
  calls: readonly PipelineCall[],
  lateness: ReadonlyMap<number, number[]>,
  window: { from: number; to: number },
): string {
  const big = calls.filter((c) => c.commands >= BIG && c.start >= window.from && c.start < window.to);
  const shadow = (t: number) => big.some((c) => t >= c.start && t < Math.max(c.end, c.start) + SHADOW_MS);
  const inside: number[] = [];
  const outside: number[] = [];
  for (const [due, values] of lateness) (shadow(due) ? inside : outside).push(...values);
  const fmt = (xs: number[]) => {
    const s = summarize(xs);
    return s.count === 0
      ? 'n/a'
      : `p50 ${Math.round(s.p50)} / p99 ${Math.round(s.p99)} ms (${s.count} slots)`;
  };
  const dur = summarize(big.map((c) => c.end - c.start));
  return (
    `scheduler Redis pipelines of ≥ ${BIG} commands in the window: ${big.length}` +
    (big.length > 0 ? ` (took p50 ${Math.round(dur.p50)} / max ${Math.round(dur.max)} ms)` : '') +
    `; lateness of slots due during one or ${SHADOW_MS} ms after: ${fmt(inside)}; other slots: ${fmt(outside)}`
  );
}
