// A worker in its own process, as in production: the measuring process polls Postgres and Redis and
// must not share an event loop (or a CPU budget it cannot see) with the worker it measures.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root: `node --import tsx` resolves tsx from here. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ChildOptions {
  /** Shown before each line the process prints. */
  label: string;
  /** Entry file, relative to the repository root. */
  entry: string;
  /** Added to (and overriding) this process' environment. */
  env: Record<string, string>;
}

export interface Child {
  readonly pid: number;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines the process printed (for error messages). */
  tail(): string[];
}

const TAIL_LINES = 20;

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/**
 * Starts `node --import tsx <entry>` from the repository root. Everything it prints is forwarded,
 * prefixed, to `print` (a worker at LOG_LEVEL=warn prints only what went wrong).
 */
export function startChild(opts: ChildOptions, print: (line: string) => void): Child {
  const child = spawn(
    process.execPath,
    [
      ...(process.env['BENCH_CHILD_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
      '--import',
      'tsx',
      opts.entry,
    ],
    {
      cwd: REPO_ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  if (child.pid === undefined) throw new Error(`could not start ${opts.entry}`);
  const lines: string[] = [];
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (lines.length > TAIL_LINES) lines.shift();
        print(`    [${opts.label}] ${line}`);
      }
    });
  }
  return {
    pid: child.pid,
    get exited() {
      return exited;
    },
    async stop(graceMs = 15_000) {
      const exit = exitOf(child);
      if (!exited) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
    tail: () => [...lines],
  };
}
