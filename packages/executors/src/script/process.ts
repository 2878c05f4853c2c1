import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, chmod, chown, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The first executable file called `name` in the `:`-separated `searchPath`, or null. */
export async function findExecutable(name: string, searchPath: string): Promise<string | null> {
  const candidates = name.includes('/') ? [name] : searchPath.split(':').filter((d) => d.startsWith('/'));
  for (const dir of candidates) {
    const file = name.includes('/') ? dir : join(dir, name);
    try {
      await access(file, constants.X_OK);
      if ((await stat(file)).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

export interface UnixUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * A user by name (`nobody`), uid (`65534`) or `uid:gid`, through NSS (`getent passwd`) so LDAP
 * and the like work too.
 * @throws Error when the user does not exist.
 */
export async function lookupUser(spec: string, searchPath: string): Promise<UnixUser> {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec);
  if (numeric?.[1] !== undefined && numeric[2] !== undefined) {
    return { name: spec, uid: Number(numeric[1]), gid: Number(numeric[2]) };
  }
  const getent = await findExecutable('getent', searchPath);
  let entry: string | undefined;
  if (getent) {
    try {
      entry = (await execFileAsync(getent, ['passwd', spec], { timeout: 5000 })).stdout.split('\n')[0];
    } catch {
      entry = undefined; // exit code 2: no such user
    }
  } else {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const key = numeric ? 2 : 0;
    entry = passwd.split('\n').find((line) => line.split(':')[key] === spec);
  }
  const fields = entry?.split(':') ?? [];
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (fields[0] === undefined || !Number.isInteger(uid) || !Number.isInteger(gid) || fields.length < 4) {
    throw new Error(`no such user: ${spec}`);
  }
  return { name: fields[0], uid, gid };
}

/**
 * Creates a system account for scripts (`useradd --system`, its own group, no home, no login
 * shell) unless it exists; another worker creating it at the same moment is fine.
 * @throws Error when it neither exists nor can be created.
 */
export async function ensureSystemUser(name: string, searchPath: string): Promise<UnixUser> {
  try {
    return await lookupUser(name, searchPath);
  } catch {
    // not there yet
  }
  const useradd = await findExecutable('useradd', searchPath);
  if (!useradd) throw new Error(`no such user: ${name}, and useradd is not installed to create it`);
  try {
    await execFileAsync(
      useradd,
      [
        '--system',
        '--user-group',
        '--no-create-home',
        '--home-dir',
        '/nonexistent',
        '--shell',
        '/usr/sbin/nologin',
        '--comment',
        'Chronos SCRIPT jobs',
        name,
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    // Exit 9: created meanwhile by someone else; anything else is reported below if still missing.
    try {
      return await lookupUser(name, searchPath);
    } catch {
      const stderr = (err as { stderr?: string }).stderr?.trim();
      throw new Error(`could not create the user ${name}: ${stderr || (err as Error).message}`);
    }
  }
  return lookupUser(name, searchPath);
}

/**
 * Sends `signal` to every process of the group; false when the group no longer exists. Never
 * throws: it runs from abort listeners and timers.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    // EPERM: a member we may not signal; the /proc sweep reports it if it survives.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * SIGKILLs every process of the run, until none is left alive or `timeoutMs` passed: the members of
 * its process group, and the processes whose environment says they belong to the run
 * (`CHRONOS_RUN_ID=<runId>`), i.e. those that left the group with setsid/setpgid. Zombies count as
 * dead: who reaps an orphan is up to PID 1 (or a subreaper), not us. Finding escapees is best
 * effort: a process that cleared its environment, or one the worker may not inspect, is missed.
 * Linux (/proc); elsewhere only the group is signalled.
 * @returns how many processes were killed, and the pids still alive at the deadline.
 */
export async function killRunProcesses(
  pgid: number,
  runId: string,
  timeoutMs: number,
): Promise<{ killed: number; survivors: number[] }> {
  signalGroup(pgid, 'SIGKILL');
  const marker = Buffer.from(`CHRONOS_RUN_ID=${runId}\0`);
  const deadline = Date.now() + timeoutMs;
  const killed = new Set<number>();
  for (;;) {
    let entries: string[];
    try {
      entries = await readdir('/proc');
    } catch {
      return { killed: killed.size, survivors: [] };
    }
    const alive: number[] = [];
    for (const entry of entries) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      if (pid === process.pid) continue;
      try {
        const stat = await readFile(`/proc/${entry}/stat`, 'latin1');
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (state === 'Z' || state === 'X') continue;
        if (Number(pgrp) !== pgid) {
          const environ = await readFile(`/proc/${entry}/environ`);
          const at = environ.indexOf(marker);
          if (at === -1 || (at > 0 && environ[at - 1] !== 0)) continue;
        }
        process.kill(pid, 'SIGKILL');
        alive.push(pid);
      } catch {
        // gone, or not ours to read or signal
      }
    }
    for (const pid of alive) killed.add(pid);
    if (alive.length === 0 || Date.now() >= deadline) return { killed: killed.size, survivors: alive };
    await sleep(10);
  }
}

/** A fresh private directory (0700) under `root`, owned by `owner` when given. */
export async function createWorkdir(root: string, owner: UnixUser | null): Promise<string> {
  const dir = await mkdtemp(join(root, 'chronos-script-'));
  if (owner) await chown(dir, owner.uid, owner.gid);
  return dir;
}

/**
 * Removes a run's directory whatever the script left in it (read-only folders included).
 * @throws when it cannot be removed.
 */
export async function removeWorkdir(dir: string): Promise<void> {
  try {
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    // A folder the script made unwritable stops rm for a non-root worker: make it writable again.
    await makeWritable(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 2 });
  }
}

async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => {});
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isDirectory()) await makeWritable(join(dir, entry.name));
  }
}
