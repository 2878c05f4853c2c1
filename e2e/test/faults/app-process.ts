// One Chronos app (api, scheduler or worker) as a real process of its own, the way the one-command
// start runs it (`node --import tsx apps/<name>/src/main.ts`), so a fault test can kill it, watch
// whether it exits, and read what it printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { REPO_ROOT, isAlive } from '../helpers.ts';

export type AppName = 'api' | 'scheduler' | 'worker';

export interface AppProcess {
  readonly name: AppName;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or the signal's name) once the process exits. */
  readonly exited: Promise<number | string>;
  /** True while the process has not exited. */
  running(): boolean;
  /** Waits for an output line matching `pattern` (printed since the start). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Everything printed so far, for failure messages. */
  output(): string;
  /** SIGKILLs its process group and waits for it to exit. */
  kill(): Promise<void>;
}

const started = new Set<AppProcess>();

/**
 * Starts `apps/<name>/src/main.ts` with exactly `env` (plus PATH and HOME from this process).
 * `stopAllApps()` in afterEach/afterAll kills whatever is left.
 */
export function startApp(name: AppName, env: Record<string, string>): AppProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', `apps/${name}/src/main.ts`], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? '/root',
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      SCHEDULER_METRICS_PORT: '0',
      ...env,
    },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  const collect = (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exitedWith: number | string | undefined;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve((exitedWith = code ?? signal ?? 'unknown'))),
  );
  const app: AppProcess = {
    name,
    child,
    pid: child.pid as number,
    exited,
    running: () => exitedWith === undefined,
    output: () => `--- ${name} (pid ${child.pid})\n${[...lines, partial].join('\n')}`,
    async waitForLine(pattern, timeoutMs = 90_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.find((l) => pattern.test(l));
        if (line) return line;
        if (exitedWith !== undefined)
          throw new Error(`${name} exited (${exitedWith}) without printing ${pattern}\n${app.output()}`);
        if (Date.now() >= until)
          throw new Error(`${name} printed no ${pattern} within ${timeoutMs} ms\n${app.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async kill() {
      for (const target of [-app.pid, app.pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // gone
        }
      }
      await exited;
      const until = Date.now() + 10_000;
      while (isAlive(app.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    },
  };
  started.add(app);
  return app;
}

/** Kills every app started since the last call. */
export async function stopAllApps(): Promise<void> {
  const apps = [...started];
  started.clear();
  await Promise.all(apps.map((a) => a.kill()));
}
