// The orchestrator's side of the worker process: start it, ask how far it got, stop it and collect
// what it recorded.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Pickup } from './measure.ts';
import type { FromWorker, LoopDelay, ToWorker, WorkerProcessConfig } from './protocol.ts';

export interface WorkerResult {
  pickups: Pickup[];
  failed: number;
  errors: string[];
  /** The worker process' event-loop delay during the window. */
  loopDelay: LoopDelay | null;
}

export interface WorkerHandle {
  /** Distinct slots due in [from, to) picked up so far. */
  count(from: number, to: number): Promise<number>;
  /** Tells the worker the measured window opened or closed. */
  window(phase: 'open' | 'close'): void;
  /** Closes the BullMQ worker (in-flight jobs finish) and returns every pickup. */
  stop(): Promise<WorkerResult>;
  /** Ends the process without collecting (after a failure). */
  kill(): void;
}

const ENTRY = fileURLToPath(new URL('./worker-process.ts', import.meta.url));

function nextMessage<T extends FromWorker['type']>(
  child: ChildProcess,
  type: T,
): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: FromWorker) => {
      if (msg.type !== type) return;
      cleanup();
      resolve(msg as Extract<FromWorker, { type: T }>);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`worker process exited (code ${code}) while waiting for "${type}"`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Forks the worker process (with this process' tsx loader flags) and waits until it is ready. */
export async function startWorkerProcess(config: WorkerProcessConfig): Promise<WorkerHandle> {
  const child = fork(ENTRY, [JSON.stringify(config)], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    await nextMessage(child, 'ready');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const ask = (msg: ToWorker) => child.send(msg);
  return {
    async count(from, to) {
      const reply = nextMessage(child, 'count');
      ask({ type: 'count', from, to });
      return (await reply).picked;
    },
    window(phase) {
      ask({ type: 'window', phase });
    },
    async stop() {
      const reply = nextMessage(child, 'result');
      ask({ type: 'stop' });
      const r = await reply;
      const pickups: Pickup[] = r.keys.map((key, i) => ({
        key,
        scheduledMs: r.scheduled[i] as number,
        pickedMs: r.picked[i] as number,
      }));
      await new Promise<void>((resolve) =>
        child.exitCode !== null ? resolve() : child.once('exit', () => resolve()),
      );
      return { pickups, failed: r.failed, errors: r.errors, loopDelay: r.loopDelay };
    },
    kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
