// What the numbers were measured on.

import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg, totalmem, type as osType, release } from 'node:os';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { withDatabase } from './cleanup.ts';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  postgres: string;
  redis: string;
  /** 1, 5 and 15-minute load averages. */
  load: [number, number, number];
}

async function cpuModel(): Promise<string> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? 'unknown';
}

export async function describeMachine(postgresUrl: string, redis: Redis): Promise<Machine> {
  const client = new pg.Client({ connectionString: withDatabase(postgresUrl, 'postgres') });
  await client.connect();
  let postgres: string;
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    postgres = rows[0]?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
  const info = await redis.info('server');
  const hz = await redis.config('GET', 'hz').catch(() => [] as unknown[]);
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  const [l1 = 0, l5 = 0, l15 = 0] = loadavg();
  return {
    cpus: availableParallelism(),
    cpuModel: await cpuModel(),
    memoryGiB: totalmem() / 2 ** 30,
    os: `${osType()} ${release()}`,
    node: process.version,
    postgres,
    redis: `${version}${Array.isArray(hz) && hz[1] ? ` (hz ${String(hz[1])})` : ''}`,
    load: [l1, l5, l15],
  };
}

export function machineLine(m: Machine): string {
  return (
    `${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB.toFixed(1)} GiB RAM, ${m.os}; Node ${m.node}; ` +
    `PostgreSQL ${m.postgres}; Redis ${m.redis}`
  );
}

export function loadLine(load: readonly number[]): string {
  return load.map((l) => l.toFixed(2)).join(' / ');
}
