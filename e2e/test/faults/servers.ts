// Servers a fault test owns: a PostgreSQL and a Redis on free ports, in a folder of the test's own,
// that the test can stop, start and restart at will without touching the machine's shared services.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../helpers.ts';

const run = promisify(execFile);

/** `/usr/lib/postgresql/<newest>/bin`: where initdb and pg_ctl live on Debian. */
function postgresBin(): string {
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) throw new Error('no PostgreSQL server under /usr/lib/postgresql');
  return join('/usr/lib/postgresql', versions[0] as string, 'bin');
}

export interface OwnPostgres {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** `pg_ctl stop -m fast`: every connection is terminated (nothing when stopped already). */
  stop(): Promise<void>;
  /** Starts it again (nothing when running). */
  start(): Promise<void>;
  /** `pg_ctl restart -m fast`, what an operator's restart does. */
  restart(): Promise<void>;
  /** Stops it (if running) and removes its folder. */
  close(): Promise<void>;
}

/**
 * A PostgreSQL of the test's own (initdb refuses root, so it runs as the `postgres` user), trust
 * authentication, listening on 127.0.0.1 at a free port. Starts in about a second.
 */
export async function startPostgres(): Promise<OwnPostgres> {
  const bin = postgresBin();
  const dir = mkdtempSync(join(tmpdir(), 'chronos-fault-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, ...postgresIds());
  const pgCommand = async (tool: string, args: string[]) => {
    const [cmd, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]]
      : [join(bin, tool), args];
    try {
      await run(cmd, argv, { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
  };
  await pgCommand('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync']);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const ctl = (action: string, ...extra: string[]) =>
    pgCommand('pg_ctl', [
      '-D',
      join(dir, 'data'),
      '-o',
      options,
      '-l',
      join(dir, 'log'),
      '-w',
      action,
      ...extra,
    ]);
  await ctl('start');
  let running = true;
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (!running) return;
      await ctl('stop', '-m', 'fast');
      running = false;
    },
    async start() {
      if (running) return;
      await ctl('start');
      running = true;
    },
    async restart() {
      await ctl('restart', '-m', 'fast');
      running = true;
    },
    async close() {
      if (running) await ctl('stop', '-m', 'immediate').catch(() => {});
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresIds(): [number, number] {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return [id('-u'), id('-g')];
}

export interface OwnRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Shuts it down (nothing is saved: it comes back empty, like a restarted cache). */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it if running and removes its folder. */
  close(): Promise<void>;
}

/** A Redis of the test's own on a free port, keeping nothing on disk. */
export async function startRedis(): Promise<OwnRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'chronos-fault-redis-'));
  const port = await freePort();
  const start = async () => {
    await run('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'yes',
      '--dir',
      dir,
      '--pidfile',
      join(dir, 'redis.pid'),
      '--logfile',
      join(dir, 'redis.log'),
    ]);
    await until(async () => (await ping(port)) === 'PONG', `Redis on ${port} to answer`);
  };
  const stop = async () => {
    await run('redis-cli', ['-p', String(port), 'shutdown', 'nosave']).catch(() => {});
    await until(async () => (await ping(port)) !== 'PONG', `Redis on ${port} to stop`);
  };
  await start();
  let running = true;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await stop();
      running = false;
    },
    async start() {
      await start();
      running = true;
    },
    async close() {
      if (running) await stop();
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function ping(port: number): Promise<string> {
  try {
    return (await run('redis-cli', ['-p', String(port), 'ping'], { timeout: 5000 })).stdout.trim();
  } catch {
    return '';
  }
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
