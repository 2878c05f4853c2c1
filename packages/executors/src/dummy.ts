import {
  PermanentJobError,
  RetryableJobError,
  dummyPayloadSchema,
  fieldIssues,
  type DummyMetadata,
  type DummyPayloadInput,
} from '@chronos/core';
import { invalidPayload } from './errors.ts';
import type { ExecContext, ExecLogger, ExecResult } from './types.ts';

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const LEVELS: ReadonlyArray<keyof ExecLogger> = ['info', 'debug', 'warn', 'trace', 'error'];
/** Lines logged between two yields to the event loop, so a big batch neither starves nor ignores aborts. */
const LOG_BATCH = 1000;

/**
 * DUMMY: per its metadata, logs `logLines` lines (levels cycling info/debug/warn/trace/error, each
 * with a JSON context), sleeps `sleepMs` (abortable), then returns `output` (default `{ ok: true }`)
 * or fails — `fail: 'retryable' | 'permanent'` — with `failCode` (default DUMMY_FAILURE) and `message`.
 */
export async function runDummy(input: DummyPayloadInput, ctx: ExecContext): Promise<ExecResult> {
  const parsed = dummyPayloadSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issues = fieldIssues(parsed.error);
    throw invalidPayload(`invalid DUMMY payload: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
  const meta: DummyMetadata = parsed.data.metadata ?? {};
  if (ctx.signal.aborted) throw ctx.signal.reason;

  const lines = meta.logLines ?? 0;
  for (let i = 0; i < lines; i++) {
    if (i > 0 && i % LOG_BATCH === 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (ctx.signal.aborted) throw ctx.signal.reason;
    }
    const level = LEVELS[i % LEVELS.length] ?? 'info';
    ctx.log[level](`dummy line ${i + 1} of ${lines}`, {
      line: i + 1,
      of: lines,
      runId: ctx.runId,
      attempt: ctx.attempt,
    });
  }

  if (meta.sleepMs) await abortableSleep(meta.sleepMs, ctx.signal);

  if (meta.fail === 'retryable' || meta.fail === 'permanent') {
    const code = meta.failCode ?? 'DUMMY_FAILURE';
    const message = meta.message ?? `DUMMY job asked to fail (${meta.fail})`;
    throw meta.fail === 'retryable'
      ? new RetryableJobError(message, code)
      : new PermanentJobError(message, code);
  }
  return { output: meta.output === undefined ? { ok: true } : meta.output };
}
