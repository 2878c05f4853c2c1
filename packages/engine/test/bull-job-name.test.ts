import { describe, expect, it } from 'vitest';
import { BULL_JOB_NAME_MAX, bullJobName } from '../src/enqueue.ts';

describe("a BullMQ job's name (what Bull Board lists)", () => {
  it.each([
    ['nightly-report', 'nightly-report'],
    ['Sync  users\tto CRM', 'Sync users to CRM'],
    ['line one\nline two\r\n', 'line one line two'],
    ['bell\u0007 and zero\u200bwidth', 'bell and zero width'],
    ['  ', 'run'],
    ['café ☕ 日本', 'café ☕ 日本'],
  ])('%j is shown as %j', (name, shown) => {
    expect(bullJobName(name)).toBe(shown);
  });

  it(`is cut at ${BULL_JOB_NAME_MAX} characters, never inside a character`, () => {
    expect(bullJobName('x'.repeat(BULL_JOB_NAME_MAX))).toBe('x'.repeat(BULL_JOB_NAME_MAX));
    const long = bullJobName('😀'.repeat(255));
    expect([...long]).toHaveLength(BULL_JOB_NAME_MAX);
    expect(long).toBe(`${'😀'.repeat(BULL_JOB_NAME_MAX - 1)}…`);
  });
});
