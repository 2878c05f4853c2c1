import { createMasker } from '@chronos/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRunContext, type PayloadFields, type RunContextRun } from '../src/index.ts';
import { createJob, harness, type Harness } from './fixtures.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness('engine-run-context-fields');
});
afterAll(async () => {
  await h?.close();
});

async function payloadOf(jobId: string): Promise<PayloadFields> {
  const { id: _id, jobId: _j, ...fields } = await h.db.jobPayload.findUniqueOrThrow({ where: { jobId } });
  return fields;
}

const run = (jobId: string): RunContextRun => ({
  id: '01JRUN0000000000000000000B',
  jobId,
  attempt: 1,
  definitionVersion: 1,
  trigger: 'MANUAL',
  status: 'SUCCESS',
  errorMessage: null,
  errorCode: null,
  startTime: new Date('2026-05-01T08:00:00Z'),
  endTime: new Date('2026-05-01T08:00:01Z'),
});

describe("a run's context", () => {
  it("lists only its own type's payload fields, not the other types' column defaults", async () => {
    const jobId = await createJob(h, {});
    await h.db.jobPayload.update({ where: { jobId }, data: { metadata: { sleepMs: 5 } } });
    const row = await payloadOf(jobId);
    // The stored row holds other types' columns with their defaults (HTTP's method, …).
    const foreign = Object.entries(row).filter(
      ([k, v]) => v !== null && !['type', 'metadata', 'timeoutSeconds'].includes(k),
    );
    expect(foreign.length).toBeGreaterThan(0);
    const doc = buildRunContext({ run: run(jobId), inputs: row, masker: createMasker([]) });
    expect(doc.inputs).toEqual({ metadata: { sleepMs: 5 } });
  });

  it("of an HTTP job keeps the HTTP fields, the type given or read from the row's type column", async () => {
    const inputs = {
      type: 'HTTP',
      httpUrl: 'https://example.test/x',
      httpMethod: 'POST',
      scriptInterpreter: 'bash',
      fileOperation: 'COPY',
      timeoutSeconds: 30,
    };
    const fromRow = buildRunContext({ run: run('J'), inputs, masker: createMasker([]) });
    const given = buildRunContext({
      run: run('J'),
      inputs: { ...inputs, type: undefined },
      type: 'HTTP',
      masker: createMasker([]),
    });
    for (const doc of [fromRow, given])
      expect(doc.inputs).toEqual({
        httpUrl: 'https://example.test/x',
        httpMethod: 'POST',
        timeoutSeconds: 30,
      });
  });
});
