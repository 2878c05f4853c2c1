import { PermanentJobError, RetryableJobError } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { executors, runDummy } from '../src/index.ts';
import { makeCtx, rejection } from './helpers.ts';

describe('DUMMY executor', () => {
  it('succeeds with { ok: true } by default, or with the given output', async () => {
    expect(await runDummy({}, makeCtx())).toEqual({ output: { ok: true } });
    expect(await runDummy({ metadata: null }, makeCtx())).toEqual({ output: { ok: true } });
    expect(await runDummy({ metadata: { output: { rows: [1, 2] } } }, makeCtx())).toEqual({
      output: { rows: [1, 2] },
    });
    expect(executors.DUMMY).toBe(runDummy);
  });

  it('sleeps sleepMs', async () => {
    const started = Date.now();
    await runDummy({ metadata: { sleepMs: 120 } }, makeCtx());
    expect(Date.now() - started).toBeGreaterThanOrEqual(115);
  });

  it('stops sleeping at once when aborted, rejecting with the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('run timed out after 1 s');
    setTimeout(() => controller.abort(reason), 50);
    const started = Date.now();
    const err = await rejection(() =>
      runDummy({ metadata: { sleepMs: 60_000 } }, makeCtx({ signal: controller.signal })),
    );
    expect(err).toBe(reason);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('emits logLines lines with alternating levels and a JSON context', async () => {
    const ctx = makeCtx();
    await runDummy({ metadata: { logLines: 10 } }, ctx);
    expect(ctx.log.lines).toHaveLength(10);
    expect(new Set(ctx.log.lines.map((l) => l.level))).toEqual(
      new Set(['info', 'debug', 'warn', 'trace', 'error']),
    );
    expect(ctx.log.lines[0]).toEqual({
      level: 'info',
      msg: 'dummy line 1 of 10',
      context: { line: 1, of: 10, runId: ctx.runId, attempt: 1 },
    });
  });

  it('logs 100,000 lines and still honours an abort between batches', async () => {
    const ctx = makeCtx();
    await runDummy({ metadata: { logLines: 100_000 } }, ctx);
    expect(ctx.log.lines).toHaveLength(100_000);

    const controller = new AbortController();
    const aborting = makeCtx({ signal: controller.signal });
    const reason = new Error('cancelled');
    const orig = aborting.log.info;
    aborting.log.info = (msg, context) => {
      orig(msg, context);
      if (aborting.log.lines.length >= 1500 && !controller.signal.aborted) controller.abort(reason);
    };
    expect(await rejection(() => runDummy({ metadata: { logLines: 100_000 } }, aborting))).toBe(reason);
    expect(aborting.log.lines.length).toBeLessThanOrEqual(2000);
  });

  it('fails retryable or permanent with failCode and message', async () => {
    const retryable = await rejection(() =>
      runDummy({ metadata: { fail: 'retryable', failCode: 'FLAKY', message: 'try again' } }, makeCtx()),
    );
    expect(retryable).toBeInstanceOf(RetryableJobError);
    expect(retryable).toMatchObject({ code: 'FLAKY', message: 'try again' });

    const permanent = await rejection(() => runDummy({ metadata: { fail: 'permanent' } }, makeCtx()));
    expect(permanent).toBeInstanceOf(PermanentJobError);
    expect(permanent.code).toBe('DUMMY_FAILURE');

    // The older boolean spelling.
    expect(await rejection(() => runDummy({ metadata: { fail: true } }, makeCtx()))).toBeInstanceOf(
      PermanentJobError,
    );
    expect(await runDummy({ metadata: { fail: false } }, makeCtx())).toEqual({ output: { ok: true } });
  });

  it('refuses invalid metadata with INVALID_PAYLOAD naming the field', async () => {
    const err = await rejection(() => runDummy({ metadata: { sleepMs: -5 } }, makeCtx()));
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('INVALID_PAYLOAD');
    expect(err.message).toContain('metadata.sleepMs');
  });
});
