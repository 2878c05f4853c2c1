import { describe, expect, it } from 'vitest';
import { rejectAfter, settleWithin } from '../src/index.ts';

const never = new Promise<never>(() => {});

describe('rejectAfter', () => {
  it("passes the work's outcome through, or rejects with the message when it is late", async () => {
    await expect(rejectAfter(Promise.resolve(7), 1000, 'late')).resolves.toBe(7);
    await expect(rejectAfter(Promise.reject(new Error('boom')), 1000, 'late')).rejects.toThrow('boom');
    await expect(rejectAfter(never, 20, 'no answer within 20 ms')).rejects.toThrow('no answer within 20 ms');
  });
});

describe('settleWithin', () => {
  it("gives the work's value, else the fallback when it fails or is late; never rejects", async () => {
    await expect(settleWithin(Promise.resolve('v'), 1000, 'fallback')).resolves.toBe('v');
    await expect(settleWithin(Promise.reject(new Error('boom')), 1000, 'fallback')).resolves.toBe('fallback');
    await expect(settleWithin(never, 20, 'fallback')).resolves.toBe('fallback');
  });
});
