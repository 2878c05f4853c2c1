export interface MicroBatcherOptions {
  /** Most items one call of a batch function receives. @defaultValue 200 */
  maxBatch?: number;
}

interface Pending {
  item: unknown;
  key: string;
  resolve: (out: unknown) => void;
  reject: (err: unknown) => void;
}

interface Channel {
  queue: Pending[];
  busy: boolean;
  run: (items: unknown[]) => Promise<unknown[]>;
}

/**
 * Group commit over a few channels (kinds of statement). Each channel has at most one batch call in
 * flight; the items submitted meanwhile are collected and handed to its next call together, so N
 * concurrent submitters cost one call instead of N, and a lone submitter waits for nobody (its call
 * starts on the next turn of the event loop). Channels run in parallel, except that an item whose
 * key (e.g. a job id) is in a batch of another channel in flight waits for that batch to end: two
 * statements of one process never contend for the same row.
 *
 * A batch function answers every item of its batch, in order; if it throws, every item of the
 * batch gets the error.
 */
export class MicroBatcher {
  private readonly maxBatch: number;
  private readonly channels: Channel[] = [];
  /** Keys of the items in flight, with how many of them carry each. */
  private readonly inFlight = new Map<string, number>();
  private scheduled = false;
  private idle: (() => void)[] = [];
  /** Where the next pump starts looking: after the channel that sent last, so none starves. */
  private next = 0;

  constructor(opts: MicroBatcherOptions = {}) {
    this.maxBatch = opts.maxBatch ?? 200;
  }

  /** A channel: `submit(item, key)` resolves with the answer `run` gave for the item. */
  channel<In, Out>(run: (items: In[]) => Promise<Out[]>): (item: In, key: string) => Promise<Out> {
    const channel: Channel = { queue: [], busy: false, run: run as Channel['run'] };
    this.channels.push(channel);
    return (item, key) =>
      new Promise<Out>((resolve, reject) => {
        channel.queue.push({ item, key, resolve: resolve as Pending['resolve'], reject });
        this.schedulePump();
      });
  }

  /**
   * Pumps on the next turn of the event loop, so that everything submitted in this one (e.g. the
   * finishes of runs whose starts were just answered together) shares a call.
   */
  private schedulePump(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Resolves once nothing is waiting or in flight. */
  drain(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private isIdle(): boolean {
    return this.channels.every((c) => !c.busy && c.queue.length === 0);
  }

  private pump(): void {
    const n = this.channels.length;
    const first = this.next;
    for (let k = 0; k < n; k++) {
      const i = (first + k) % n;
      const channel = this.channels[i] as Channel;
      if (channel.busy || channel.queue.length === 0) continue;
      const batch: Pending[] = [];
      const held: Pending[] = [];
      for (const p of channel.queue)
        if (batch.length < this.maxBatch && !this.inFlight.has(p.key)) batch.push(p);
        else held.push(p);
      if (batch.length === 0) continue;
      channel.queue = held;
      this.next = i + 1;
      this.send(channel, batch);
    }
    if (this.isIdle()) for (const done of this.idle.splice(0)) done();
  }

  private send(channel: Channel, batch: Pending[]): void {
    channel.busy = true;
    for (const { key } of batch) this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    channel
      .run(batch.map((p) => p.item))
      .then(
        (outs) => batch.forEach((p, i) => p.resolve(outs[i])),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        for (const { key } of batch) {
          const n = (this.inFlight.get(key) ?? 1) - 1;
          if (n === 0) this.inFlight.delete(key);
          else this.inFlight.set(key, n);
        }
        channel.busy = false;
        this.pump();
      });
  }
}
