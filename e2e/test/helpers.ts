// Support for end-to-end tests that run `node scripts/start.mjs` against real services.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const LAUNCHER = resolve(REPO_ROOT, 'scripts', 'start.mjs');

/** The PostgreSQL server test databases live on (same variable as @chronos/db's test helpers). */
export const TEST_POSTGRES_URL =
  process.env['CHRONOS_TEST_POSTGRES_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env['CHRONOS_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** `chronos_e2e_<label>_<random>`: one base name per test file. */
export function uniqueName(label: string): string {
  return `chronos_e2e_${label}_${randomBytes(4).toString('hex')}`;
}

export function databaseUrl(database: string, serverUrl = TEST_POSTGRES_URL): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function dropDatabase(database: string, serverUrl = TEST_POSTGRES_URL): Promise<void> {
  const admin = new pg.Client({ connectionString: databaseUrl('postgres', serverUrl) });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Runs `fn` with a client on `url`, closing it afterwards. */
export async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Deletes every Redis key under `prefix:`. */
export async function deleteRedisPrefix(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Does anything accept TCP connections on 127.0.0.1:port? */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolveAnswer(true);
    });
    socket.once('error', () => resolveAnswer(false));
  });
}

/** Polls `check` until it returns something truthy; fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 60_000, intervalMs = 200, what = 'condition' } = {},
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= until)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Environment for the launcher: this process's, minus anything that would pick its services. */
export function launcherEnv(overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [
    'DATABASE_URL',
    'REDIS_URL',
    'REDIS_PREFIX',
    'PORT',
    'HOST',
    'CHRONOS_ADMIN_EMAIL',
    'CHRONOS_ADMIN_PASSWORD',
    'CHRONOS_DATA_DIR',
    'CHRONOS_LOCAL_PG_PORT',
    'CHRONOS_LOCAL_REDIS_PORT',
    'S3_ENDPOINT',
    'S3_LOCAL_PORT',
    'S3_BUCKET',
    'WORKER_TYPES',
  ])
    delete env[name];
  env['NODE_ENV'] = 'test';
  env['LOG_LEVEL'] = 'warn';
  // Any free port: a Chronos running on this machine keeps its own.
  env['SCHEDULER_METRICS_PORT'] = '0';
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface Launcher {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the exit code (or the signal's name) when the launcher exits. */
  readonly exited: Promise<number | string>;
  /** Waits for an output line (stdout or stderr) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Everything printed so far, for failure messages. */
  output(): string;
}

const started = new Set<Launcher>();

function splitLines(into: string[]) {
  let partial = '';
  return (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    into.push(...lines);
  };
}

/**
 * Starts `node scripts/start.mjs` (or `command`, e.g. `pnpm start`, with `detached` its own process
 * group as in a terminal); `stopAllLaunchers()` (afterEach) cleans up whatever is left.
 */
export function startLauncher(
  env: NodeJS.ProcessEnv,
  {
    command = [process.execPath, LAUNCHER],
    detached = false,
  }: { command?: string[]; detached?: boolean } = {},
): Launcher {
  const [file = process.execPath, ...args] = command;
  const child = spawn(file, args, {
    cwd: REPO_ROOT,
    env,
    detached,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout?.on('data', splitLines(stdout));
  child.stderr?.on('data', splitLines(stderr));
  const exited = new Promise<number | string>((resolveExit) =>
    child.once('exit', (code, signal) => resolveExit(code ?? signal ?? 'unknown')),
  );
  const launcher: Launcher = {
    child,
    pid: child.pid as number,
    stdout,
    stderr,
    exited,
    output: () => `--- stdout\n${stdout.join('\n')}\n--- stderr\n${stderr.join('\n')}`,
    async waitForLine(pattern, timeoutMs = 90_000) {
      let exitedWith: number | string | undefined;
      void exited.then((code) => (exitedWith = code));
      const until = Date.now() + timeoutMs;
      for (;;) {
        const line = [...stdout, ...stderr].find((l) => pattern.test(l));
        if (line) return line;
        if (exitedWith !== undefined)
          throw new Error(
            `launcher exited (${exitedWith}) without printing ${pattern}\n${launcher.output()}`,
          );
        if (Date.now() >= until)
          throw new Error(`launcher printed no ${pattern} within ${timeoutMs} ms\n${launcher.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
  started.add(launcher);
  return launcher;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
}

function processTable(): ProcInfo[] {
  const table: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...; comm may hold spaces and parentheses
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.push({ pid: Number(entry), state: rest[0] ?? '?', ppid: Number(rest[1]) });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** Every live descendant of `pid` (children, grandchildren, ...). */
export function descendants(pid: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const p of table) {
      if (p.ppid === parent && p.state !== 'Z') {
        found.push(p.pid);
        queue.push(p.pid);
      }
    }
  }
  return found;
}

/** Is `pid` a live (not zombie) process? */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids the launcher announced: the apps (`Processes: api N, ...`) and local services (`pid N`). */
export function announcedPids(launcher: Launcher): number[] {
  return launcher.stdout
    .filter((l) => /^\[chronos\] (Processes:|PostgreSQL: .*pid|Redis: .*pid|S3: .*pid)/.test(l))
    .flatMap((l) => [...l.matchAll(/(?:pid |api |scheduler |worker )(\d+)/g)].map((m) => Number(m[1])));
}

/**
 * For afterEach: SIGKILLs every launcher started since the last call, whatever it started (also
 * after the launcher itself is gone) and their process groups, and waits until they are dead.
 */
export async function stopAllLaunchers(): Promise<void> {
  for (const launcher of [...started]) {
    started.delete(launcher);
    const pids = [...new Set([launcher.pid, ...descendants(launcher.pid), ...announcedPids(launcher)])];
    for (const pid of pids) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // gone, or not a group leader
        }
      }
    }
    await launcher.exited;
    await eventually(() => pids.every((pid) => !isAlive(pid)), {
      timeoutMs: 10_000,
      what: 'killed processes to exit',
    });
  }
}
