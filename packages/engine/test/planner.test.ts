import { describe, expect, it } from 'vitest';
import { jitterMs, planSlots, type PlanInput } from '../src/index.ts';

const T0 = new Date('2026-06-01T12:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

function plan(over: Partial<PlanInput>) {
  return planSlots({
    jobId: 'JOB',
    spec: { type: 'INTERVAL', intervalSeconds: 60, intervalMode: 'FIXED_RATE', anchorAt: T0 },
    from: T0,
    lastFireAt: null,
    now: T0,
    horizonMs: 60_000,
    misfireThresholdMs: 60_000,
    misfirePolicy: 'FIRE_NOW',
    maxCatchUp: 100,
    jitterSeconds: 0,
    chunkLimit: 1000,
    ...over,
  });
}

describe('planning slots on time', () => {
  it('records every slot inside the horizon with its key and advances past the horizon', () => {
    const p = plan({ spec: { type: 'INTERVAL', intervalSeconds: 10, anchorAt: T0 } });
    expect(p.slots.map((s) => s.time)).toEqual([0, 10, 20, 30, 40, 50, 60].map(at));
    expect(p.slots.every((s) => s.fate === 'ENQUEUE')).toBe(true);
    expect(p.slots[1]?.key).toBe(`JOB-${at(10).getTime()}`);
    expect(p.nextFireAt).toEqual(at(70));
  });

  it('a ONCE schedule plans its one slot and then nothing', () => {
    const p = plan({ spec: { type: 'ONCE', runAt: at(30) }, from: at(30) });
    expect(p.slots.map((s) => s.time)).toEqual([at(30)]);
    expect(p.nextFireAt).toBeNull();
    const later = plan({ spec: { type: 'ONCE', runAt: at(300) }, from: at(300) });
    expect(later.slots).toEqual([]);
    expect(later.nextFireAt).toEqual(at(300));
  });

  it('a fixed-delay schedule plans one slot and waits for the run to finish', () => {
    const p = plan({
      spec: { type: 'INTERVAL', intervalSeconds: 5, intervalMode: 'FIXED_DELAY', anchorAt: T0 },
    });
    expect(p.slots.map((s) => s.time)).toEqual([T0]);
    expect(p.nextFireAt).toBeNull();
  });

  it('cuts a dense schedule into chunks and continues where it stopped', () => {
    const spec = { type: 'INTERVAL' as const, intervalSeconds: 1, anchorAt: T0 };
    const first = plan({ spec, chunkLimit: 25 });
    expect(first.slots).toHaveLength(25);
    expect(first.nextFireAt).toEqual(at(25));
    const second = plan({ spec, chunkLimit: 25, from: at(25), lastFireAt: at(24) });
    expect(second.slots[0]?.time).toEqual(at(25));
  });

  it('spreads slots with deterministic jitter within the bound', () => {
    const p = plan({ spec: { type: 'INTERVAL', intervalSeconds: 10, anchorAt: T0 }, jitterSeconds: 5 });
    for (const s of p.slots) {
      const d = s.dueAt.getTime() - s.time.getTime();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(5000);
      expect(d).toBe(jitterMs(s.key, 5));
    }
    expect(new Set(p.slots.map((s) => s.dueAt.getTime() - s.time.getTime())).size).toBeGreaterThan(1);
  });
});

describe('misfires (the scheduler was down for ten minutes)', () => {
  // Slots every minute from T0; now is T0 + 10 min; threshold 60 s: slots 0..8 min are late.
  const down = { from: T0, now: at(600) };

  it('FIRE_NOW collapses the missed slots into one run now, the latest, and records the rest', () => {
    const p = plan({ ...down, misfirePolicy: 'FIRE_NOW' });
    const late = p.slots.filter((s) => s.time < at(540));
    expect(late).toHaveLength(9);
    expect(late.filter((s) => s.fate === 'ENQUEUE').map((s) => s.time)).toEqual([at(480)]);
    expect(late.find((s) => s.fate === 'ENQUEUE')?.dueAt).toEqual(at(600));
    expect(late.filter((s) => s.fate === 'SKIPPED_MISFIRE')).toHaveLength(8);
    expect(late[0]?.reason).toMatch(/600 s late.*FIRE_NOW/);
    // Within the threshold: still on time.
    expect(p.slots.filter((s) => s.time >= at(540)).every((s) => s.fate === 'ENQUEUE')).toBe(true);
  });

  it('IGNORE skips every missed slot, each with a row that says so', () => {
    const p = plan({ ...down, misfirePolicy: 'IGNORE' });
    const late = p.slots.filter((s) => s.time < at(540));
    expect(late.map((s) => s.fate)).toEqual(Array(9).fill('SKIPPED_MISFIRE'));
    expect(late.every((s) => /IGNORE/.test(s.reason ?? ''))).toBe(true);
  });

  it('RESCHEDULE runs the missed slots oldest first up to the cap and skips the rest', () => {
    const p = plan({ ...down, misfirePolicy: 'RESCHEDULE', maxCatchUp: 3 });
    const late = p.slots.filter((s) => s.time < at(540));
    expect(late.filter((s) => s.fate === 'ENQUEUE').map((s) => s.time)).toEqual([at(0), at(60), at(120)]);
    expect(late.filter((s) => s.fate === 'SKIPPED_MISFIRE')).toHaveLength(6);
  });

  it('RESCHEDULE after a real outage: the slot recorded before the outage does not spend the budget', () => {
    // Slots every second; recorded up to T0+4 s before the scheduler went down; back at T0+12 s.
    const spec = { type: 'INTERVAL' as const, intervalSeconds: 1, anchorAt: T0 };
    const p = plan({
      spec,
      from: at(5),
      lastFireAt: at(4),
      now: at(12),
      misfireThresholdMs: 2000,
      horizonMs: 0,
      misfirePolicy: 'RESCHEDULE',
      maxCatchUp: 3,
    });
    expect(p.slots.filter((s) => s.fate === 'ENQUEUE' && s.time < at(10)).map((s) => s.time)).toEqual([
      at(5),
      at(6),
      at(7),
    ]);
  });

  it('a catch-up cut into chunks spends the policy once', () => {
    const spec = { type: 'INTERVAL' as const, intervalSeconds: 1, anchorAt: T0 };
    // 600 late one-second slots, 100 per chunk.
    const first = plan({ spec, now: at(600), chunkLimit: 100, misfirePolicy: 'FIRE_NOW' });
    expect(first.slots.every((s) => s.fate === 'SKIPPED_MISFIRE')).toBe(true);
    const resched = plan({ spec, now: at(600), chunkLimit: 100, misfirePolicy: 'RESCHEDULE', maxCatchUp: 5 });
    expect(resched.slots.filter((s) => s.fate === 'ENQUEUE')).toHaveLength(5);
    const cont = plan({
      spec,
      now: at(600),
      chunkLimit: 100,
      misfirePolicy: 'RESCHEDULE',
      maxCatchUp: 5,
      from: at(100),
      lastFireAt: at(99),
      continuingCatchUp: true,
    });
    expect(cont.slots.filter((s) => s.fate === 'ENQUEUE')).toHaveLength(0);
    // The last chunk of a FIRE_NOW catch-up holds the one run.
    const last = plan({
      spec,
      now: at(600),
      chunkLimit: 100,
      misfirePolicy: 'FIRE_NOW',
      from: at(500),
      lastFireAt: at(499),
    });
    expect(last.slots.filter((s) => s.fate === 'ENQUEUE' && s.time < at(540)).map((s) => s.time)).toEqual([
      at(539),
    ]);
  });
});
