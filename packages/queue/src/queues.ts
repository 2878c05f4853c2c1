import { type JobTypeName, queueName } from '@chronos/core';
import { Queue, Worker, type Processor, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';

/** One BullMQ queue per job type. */
export type QueueSet = ReadonlyMap<JobTypeName, Queue>;

export interface QueueSetOptions {
  connection: Redis;
  /** Redis key prefix of every queue (config REDIS_PREFIX); tests use their own. */
  prefix: string;
  types: readonly JobTypeName[];
}

/** Creates (does not connect) the queue of each type. */
export function createQueues({ connection, prefix, types }: QueueSetOptions): QueueSet {
  return new Map(types.map((t) => [t, new Queue(queueName(t), { connection, prefix })] as const));
}

export async function closeQueues(queues: QueueSet): Promise<void> {
  await Promise.all([...queues.values()].map((q) => q.close()));
}

export interface TypeWorkersOptions extends QueueSetOptions {
  /** Parallel jobs per type and process: one number for all, or per type. */
  concurrency: number | ((type: JobTypeName) => number);
  /** Id recorded on runs and shown by `queue.getWorkers()`. */
  workerId: string;
  processor: (type: JobTypeName) => Processor;
  workerOptions?: Omit<WorkerOptions, 'connection' | 'prefix' | 'concurrency' | 'name' | 'autorun'>;
}

/** One BullMQ worker per served type, not yet running. */
export function createTypeWorkers(opts: TypeWorkersOptions): Map<JobTypeName, Worker> {
  return new Map(
    opts.types.map(
      (t) =>
        [
          t,
          new Worker(queueName(t), opts.processor(t), {
            ...opts.workerOptions,
            connection: opts.connection,
            prefix: opts.prefix,
            concurrency: typeof opts.concurrency === 'number' ? opts.concurrency : opts.concurrency(t),
            name: opts.workerId,
            autorun: false,
          }),
        ] as const,
    ),
  );
}
