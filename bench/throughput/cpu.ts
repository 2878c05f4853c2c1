// CPU time of the processes a measurement involves, to say where the time went: the worker process
// (JavaScript, Prisma), the PostgreSQL backends of its database, the Redis server.

import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { Redis } from 'ioredis';

/** Clock ticks per second of /proc/<pid>/stat (100 on Linux unless the kernel says otherwise). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * User + system CPU seconds of a process so far; 0 when it is gone or unreadable (a backend that
 * ended between two samples loses what it used, which is why only long-lived pools are summed).
 */
export async function processCpuSeconds(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / TICKS_PER_SECOND : 0;
}

export async function sumCpuSeconds(pids: readonly number[]): Promise<number> {
  const each = await Promise.all(pids.map((p) => processCpuSeconds(p)));
  return each.reduce((a, b) => a + b, 0);
}

/** CPU seconds the Redis server used so far (all its clients: the Redis is shared). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? Number.NaN);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? Number.NaN);
  return user + sys;
}
