import { runContextKey } from '@chronos/storage';
import { startTestStorage, type TestStorage } from '@chronos/storage/testing';
import type { RunContext } from '@chronos/engine';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createContextWriter } from '../src/run-context-writer.ts';

let s: TestStorage;
beforeAll(async () => {
  s = await startTestStorage('context-writer');
});
afterAll(async () => {
  await s?.stop();
});

const doc = (runId: string): RunContext => ({
  runId,
  jobId: 'job-1',
  attempt: 1,
  definitionVersion: 3,
  trigger: 'SCHEDULED',
  inputs: { httpUrl: 'https://example.test' },
  output: { status: 200 },
  status: 'SUCCESS',
  error: null,
  startedAt: new Date(0).toISOString(),
  endedAt: new Date(1000).toISOString(),
});

describe('the run context writer', () => {
  it('stores every queued document and flush waits for them', async () => {
    const writer = createContextWriter(s.storage, pino({ level: 'silent' }), { concurrency: 4 });
    const ids = Array.from({ length: 40 }, (_, i) => `run-${i}`);
    for (const id of ids) writer.write(doc(id));
    expect(writer.pending).toBeGreaterThan(0);
    await writer.flush();
    expect(writer.pending).toBe(0);
    for (const id of ids) expect(await s.storage.getJson<RunContext>(runContextKey(id))).toEqual(doc(id));
  });

  it('keeps at most maxQueued documents while storage lags, dropping the oldest', async () => {
    const writer = createContextWriter(s.storage, pino({ level: 'silent' }), {
      concurrency: 1,
      maxQueued: 2,
    });
    for (const id of ['d-1', 'd-2', 'd-3', 'd-4', 'd-5']) writer.write(doc(id));
    await writer.flush();
    // d-1 went out at once; of the four queued behind it, the two oldest were dropped.
    expect(await s.storage.getJson(runContextKey('d-1'))).not.toBeNull();
    expect(await s.storage.getJson(runContextKey('d-2'))).toBeNull();
    expect(await s.storage.getJson(runContextKey('d-3'))).toBeNull();
    expect(await s.storage.getJson(runContextKey('d-5'))).not.toBeNull();
  });

  it('never throws into the run when storage is down; flush still resolves', async () => {
    const down = await startTestStorage('context-writer-down');
    await down.stop();
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    const writer = createContextWriter(down.storage, log);
    writer.write(doc('lost'));
    await writer.flush();
    expect(lines.some((l) => l.includes('could not store the run context document'))).toBe(true);
  });
});
