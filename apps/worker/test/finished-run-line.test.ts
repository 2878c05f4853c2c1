import type { RunJobData } from '@chronos/engine';
import type { Job, Processor } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { withFinishedRunLine } from '../src/finished-run-line.ts';

const job = { name: 'nightly export', data: { runId: 'r1', scheduledTime: '2026-12-08T00:00:00.000Z' } };

describe('the finished-run line around a processor', () => {
  it("passes BullMQ's abort signal on: it declares three parameters, so BullMQ hands it over at shutdown", async () => {
    let seen: AbortSignal | undefined;
    const inner: Processor<RunJobData> = async (_job, _token, signal) => {
      seen = signal;
      return { started: true, status: 'SUCCESS' };
    };
    const lines: string[] = [];
    const log = {
      info: (_o: object, m: string) => lines.push(m),
      warn: (_o: object, m: string) => lines.push(m),
    };
    const wrapped = withFinishedRunLine(inner, log as never, () => 0);
    // BullMQ passes the signal only to a processor whose function length is 3.
    expect(wrapped.length).toBe(3);
    const controller = new AbortController();
    await wrapped(job as unknown as Job<RunJobData>, 'token', controller.signal);
    expect(seen).toBe(controller.signal);
    expect(lines).toEqual(['run SUCCESS: nightly export (slot 2026-12-08T00:00:00.000Z) in 0 ms']);
  });
});
