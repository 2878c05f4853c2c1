import { describe, expect, it } from 'vitest';
import { JOB_TYPES, isJobType, newId, parseSlotKey, queueName, slotKey } from '../src/index.ts';

describe('queue names', () => {
  it('give each job type its own kebab-case queue', () => {
    expect(queueName('HTTP')).toBe('chronos-http');
    expect(queueName('DB_TO_KAFKA')).toBe('chronos-db-to-kafka');
    expect(new Set(JOB_TYPES.map(queueName)).size).toBe(JOB_TYPES.length);
    for (const t of JOB_TYPES) expect(queueName(t)).not.toContain(':');
  });

  it('recognise job types', () => {
    expect(isJobType('SCRIPT')).toBe(true);
    expect(isJobType('script')).toBe(false);
  });
});

describe('slot idempotency keys', () => {
  it('are <jobId>-<epoch ms> and round-trip', () => {
    const id = newId();
    const slot = new Date('2026-03-29T01:30:00.000Z');
    const key = slotKey(id, slot);
    expect(key).toBe(`${id}-${slot.getTime()}`);
    expect(key).not.toContain(':');
    expect(parseSlotKey(key)).toEqual({ jobId: id, slot });
  });

  it('refuse ids that BullMQ cannot take and invalid dates', () => {
    expect(() => slotKey('a:b', new Date())).toThrow(/':'/);
    expect(() => slotKey('abc', new Date('nope'))).toThrow(/valid date/);
    expect(parseSlotKey('no-number-here')).toBeNull();
  });
});

describe('ids', () => {
  it('are 26-character ULIDs, ordered by creation', () => {
    const ids = Array.from({ length: 100 }, () => newId());
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect([...ids].sort()).toEqual(ids);
  });
});
