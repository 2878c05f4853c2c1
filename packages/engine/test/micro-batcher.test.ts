import { describe, expect, it } from 'vitest';
import { MicroBatcher } from '../src/micro-batcher.ts';

/** A batch function whose calls are recorded and answered only when the test says so. */
function controlled(name: string, log: string[]) {
  const open: (() => void)[] = [];
  const run = (items: string[]) => {
    log.push(`${name}:${items.join(',')}`);
    return new Promise<string[]>((resolve) => open.push(() => resolve(items.map((i) => `${i}!`))));
  };
  return {
    run,
    /** Answers the oldest call in flight. */
    answer: () => open.shift()?.(),
  };
}

/** Lets pending promise callbacks and setImmediate callbacks run. */
const turn = () => new Promise((r) => setImmediate(r));

describe('group commit', () => {
  it('hands items submitted in one turn to one call, and those that arrive during it to the next', async () => {
    const log: string[] = [];
    const b = new MicroBatcher();
    const c = controlled('a', log);
    const submit = b.channel(c.run);
    const first = [submit('1', 'k1'), submit('2', 'k2')];
    await turn();
    const later = [submit('3', 'k3'), submit('4', 'k4'), submit('5', 'k5')];
    await turn();
    expect(log).toEqual(['a:1,2']);
    c.answer();
    expect(await Promise.all(first)).toEqual(['1!', '2!']);
    await turn();
    expect(log).toEqual(['a:1,2', 'a:3,4,5']);
    c.answer();
    expect(await Promise.all(later)).toEqual(['3!', '4!', '5!']);
  });

  it('runs channels side by side, but holds an item back while its key is in flight in another channel', async () => {
    const log: string[] = [];
    const b = new MicroBatcher();
    const starts = controlled('start', log);
    const finishes = controlled('finish', log);
    const start = b.channel(starts.run);
    const finish = b.channel(finishes.run);
    const s = start('run-1', 'job-A');
    const f = [finish('run-0', 'job-A'), finish('run-9', 'job-B')];
    await turn();
    // job-B's finish goes beside the start; job-A's waits for the start statement to end.
    expect(log).toEqual(['start:run-1', 'finish:run-9']);
    starts.answer();
    await s;
    finishes.answer();
    await turn();
    expect(log).toEqual(['start:run-1', 'finish:run-9', 'finish:run-0']);
    finishes.answer();
    expect(await Promise.all(f)).toEqual(['run-0!', 'run-9!']);
  });

  it('splits what waits into batches of at most maxBatch', async () => {
    const log: string[] = [];
    const b = new MicroBatcher({ maxBatch: 2 });
    const c = controlled('a', log);
    const submit = b.channel(c.run);
    const all = ['1', '2', '3'].map((i) => submit(i, i));
    await turn();
    c.answer();
    await turn();
    c.answer();
    expect(await Promise.all(all)).toEqual(['1!', '2!', '3!']);
    expect(log).toEqual(['a:1,2', 'a:3']);
  });

  it('rejects every item of a batch whose call fails, and goes on with the next one', async () => {
    const b = new MicroBatcher();
    let calls = 0;
    const submit = b.channel(async (items: string[]) => {
      if (calls++ === 0) throw new Error('statement failed');
      return items;
    });
    const failed = [submit('1', '1'), submit('2', '2')];
    await expect(Promise.all(failed)).rejects.toThrow('statement failed');
    await expect(submit('3', '3')).resolves.toBe('3');
  });

  it('drain() resolves once nothing waits or runs', async () => {
    const b = new MicroBatcher();
    const log: string[] = [];
    const c = controlled('a', log);
    const submit = b.channel(c.run);
    await b.drain();
    const pending = submit('1', '1');
    let drained = false;
    const draining = b.drain().then(() => (drained = true));
    await turn();
    expect(drained).toBe(false);
    c.answer();
    await pending;
    await draining;
    expect(drained).toBe(true);
  });
});
