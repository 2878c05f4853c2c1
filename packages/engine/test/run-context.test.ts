import { MASK, createMasker } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { buildRunContext, type RunContextRun } from '../src/index.ts';

const secret = 'token-0123456789abcdef';

const run: RunContextRun = {
  id: '01JRUN0000000000000000000A',
  jobId: '01JJOB0000000000000000000A',
  attempt: 2,
  definitionVersion: 3,
  trigger: 'RETRY',
  status: 'FAILURE',
  startTime: new Date('2026-05-01T08:00:00Z'),
  endTime: new Date('2026-05-01T08:00:01.250Z'),
  errorMessage: `401 for Bearer ${secret}`,
  errorCode: 'HTTP_4XX',
};

describe('buildRunContext', () => {
  it('masks every secret in inputs, output and error, and drops null payload columns', () => {
    const doc = buildRunContext({
      run,
      inputs: {
        httpUrl: 'https://api.example.test/x',
        httpHeaders: { authorization: `Bearer ${secret}` },
        httpBody: null,
        scriptContent: undefined,
      },
      output: { echoed: [secret] },
      masker: createMasker([secret]),
    });
    expect(doc).toEqual({
      runId: run.id,
      jobId: run.jobId,
      attempt: 2,
      definitionVersion: 3,
      trigger: 'RETRY',
      inputs: { httpUrl: 'https://api.example.test/x', httpHeaders: { authorization: `Bearer ${MASK}` } },
      output: { echoed: [MASK] },
      status: 'FAILURE',
      error: { message: `401 for Bearer ${MASK}`, code: 'HTTP_4XX' },
      startedAt: '2026-05-01T08:00:00.000Z',
      endedAt: '2026-05-01T08:00:01.250Z',
    });
    expect(JSON.stringify(doc)).not.toContain(secret);
  });

  it('has no error and null times for a run that has not run', () => {
    const doc = buildRunContext({
      run: { ...run, status: 'QUEUED', startTime: null, endTime: null, errorMessage: null, errorCode: null },
      inputs: {},
      masker: createMasker([]),
    });
    expect(doc).toMatchObject({ error: null, output: null, startedAt: null, endedAt: null, inputs: {} });
  });
});
