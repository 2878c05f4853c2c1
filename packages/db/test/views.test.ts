import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db, type RunStatus } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';
import { withClient } from './helpers.ts';

let tdb: TestDatabase;
let db: Db;

const OWNER = 'U0000000000000000000000001';
const HTTP_JOB = 'J0000000000000000000000001';
const IDLE_JOB = 'J0000000000000000000000002';
const ONCE_JOB = 'J0000000000000000000000003';
const EMAIL_JOB = 'J0000000000000000000000004';

const at = (iso: string): Date => new Date(iso);

beforeAll(async () => {
  tdb = await createTestDatabase('views');
  // Sessions of this database default to a zone far from UTC: a run's day must still be its UTC day.
  await withClient(tdb.url, (client) =>
    client.query(`ALTER DATABASE ${pg.escapeIdentifier(tdb.name)} SET timezone TO 'Asia/Tokyo'`),
  );
  db = createDb(tdb.url);

  await db.user.create({ data: { id: OWNER, email: 'owner@example.com', passwordHash: 'x' } });
  await db.job.create({
    data: {
      id: HTTP_JOB,
      ownerId: OWNER,
      name: 'ping',
      type: 'HTTP',
      status: 'SCHEDULED',
      priority: 'HIGH',
      schedule: {
        create: { scheduleType: 'CRON', cronExpression: '0 * * * *', nextFireAt: at('2026-03-03T00:00:00Z') },
      },
    },
  });
  await db.job.create({ data: { id: IDLE_JOB, ownerId: OWNER, name: 'idle', type: 'DUMMY' } });
  await db.job.create({
    data: {
      id: ONCE_JOB,
      ownerId: OWNER,
      name: 'report',
      type: 'REPORT',
      schedule: { create: { scheduleType: 'ONCE', runAt: at('2026-04-01T08:00:00Z') } },
    },
  });
  await db.job.create({ data: { id: EMAIL_JOB, ownerId: OWNER, name: 'mail', type: 'EMAIL' } });

  const run = (
    n: number,
    jobId: string,
    status: RunStatus,
    slot: string,
    end: string | null,
    durationMs: number | null,
  ) => ({
    id: `R00000000000000000000000${String(n).padStart(2, '0')}`,
    jobId,
    idempotencyKey: `${jobId}-${n}`,
    status,
    scheduledTime: at(slot),
    endTime: end === null ? null : at(end),
    durationMs,
  });
  await db.jobRun.createMany({
    data: [
      run(1, HTTP_JOB, 'SUCCESS', '2026-03-01T10:00:00Z', '2026-03-01T10:00:00.100Z', 100),
      run(2, HTTP_JOB, 'SUCCESS', '2026-03-01T12:00:00Z', '2026-03-01T12:00:00.200Z', 200),
      // 08:30 on March 2nd in Tokyo, still March 1st in UTC.
      run(3, HTTP_JOB, 'FAILURE', '2026-03-01T23:30:00Z', '2026-03-01T23:30:00.300Z', 300),
      run(4, HTTP_JOB, 'TIMEOUT', '2026-03-02T10:00:00Z', '2026-03-02T10:00:00.500Z', 500),
      // Cancelled before it started: finished, but no duration.
      run(5, HTTP_JOB, 'CANCELLED', '2026-03-02T11:00:00Z', '2026-03-02T11:00:00Z', null),
      // Never executed: no part of either view.
      run(6, HTTP_JOB, 'QUEUED', '2026-03-03T00:00:00Z', null, null),
      run(7, HTTP_JOB, 'RUNNING', '2026-03-02T23:00:00Z', null, null),
      run(8, HTTP_JOB, 'SKIPPED_OVERLAP', '2026-03-02T22:00:00Z', null, null),
      run(9, ONCE_JOB, 'SKIPPED_MISFIRE', '2026-03-02T08:00:00Z', null, null),
      run(10, EMAIL_JOB, 'SUCCESS', '2026-03-01T09:00:00Z', '2026-03-01T09:00:00.050Z', 50),
    ],
  });
});

afterAll(async () => {
  await db?.$disconnect();
  await tdb?.drop();
});

describe('job_summary', () => {
  it('summarises every job through the Prisma client, counting only runs that executed', async () => {
    const rows = await db.jobSummary.findMany({ orderBy: { id: 'asc' } });
    expect(rows).toEqual([
      {
        id: HTTP_JOB,
        name: 'ping',
        type: 'HTTP',
        status: 'SCHEDULED',
        priority: 'HIGH',
        ownerId: OWNER,
        ownerEmail: 'owner@example.com',
        scheduleType: 'CRON',
        runAt: null,
        cronExpression: '0 * * * *',
        nextFireAt: at('2026-03-03T00:00:00Z'),
        totalRuns: 5n,
        lastRunTime: at('2026-03-02T11:00:00Z'),
        avgDurationMs: 275,
      },
      {
        id: IDLE_JOB,
        name: 'idle',
        type: 'DUMMY',
        status: 'PENDING',
        priority: 'MEDIUM',
        ownerId: OWNER,
        ownerEmail: 'owner@example.com',
        scheduleType: null,
        runAt: null,
        cronExpression: null,
        nextFireAt: null,
        totalRuns: 0n,
        lastRunTime: null,
        avgDurationMs: null,
      },
      {
        id: ONCE_JOB,
        name: 'report',
        type: 'REPORT',
        status: 'PENDING',
        priority: 'MEDIUM',
        ownerId: OWNER,
        ownerEmail: 'owner@example.com',
        scheduleType: 'ONCE',
        runAt: at('2026-04-01T08:00:00Z'),
        cronExpression: null,
        nextFireAt: null,
        totalRuns: 0n,
        lastRunTime: null,
        avgDurationMs: null,
      },
      {
        id: EMAIL_JOB,
        name: 'mail',
        type: 'EMAIL',
        status: 'PENDING',
        priority: 'MEDIUM',
        ownerId: OWNER,
        ownerEmail: 'owner@example.com',
        scheduleType: null,
        runAt: null,
        cronExpression: null,
        nextFireAt: null,
        totalRuns: 1n,
        lastRunTime: at('2026-03-01T09:00:00.050Z'),
        avgDurationMs: 50,
      },
    ]);
  });

  it('can be filtered by job like a table', async () => {
    const row = await db.jobSummary.findUnique({
      where: { id: EMAIL_JOB },
      select: { name: true, totalRuns: true },
    });
    expect(row).toEqual({ name: 'mail', totalRuns: 1n });
  });
});

describe('execution_stats', () => {
  // In ORDER BY order: JobType declares HTTP before EMAIL, RunStatus SUCCESS < FAILURE < TIMEOUT < CANCELLED.
  const expected = [
    {
      executionDate: at('2026-03-01T00:00:00Z'),
      jobType: 'HTTP',
      outcome: 'SUCCESS',
      executionCount: 2n,
      avgDurationMs: 150,
      minDurationMs: 100,
      maxDurationMs: 200,
    },
    {
      executionDate: at('2026-03-01T00:00:00Z'),
      jobType: 'HTTP',
      outcome: 'FAILURE',
      executionCount: 1n,
      avgDurationMs: 300,
      minDurationMs: 300,
      maxDurationMs: 300,
    },
    {
      executionDate: at('2026-03-01T00:00:00Z'),
      jobType: 'EMAIL',
      outcome: 'SUCCESS',
      executionCount: 1n,
      avgDurationMs: 50,
      minDurationMs: 50,
      maxDurationMs: 50,
    },
    {
      executionDate: at('2026-03-02T00:00:00Z'),
      jobType: 'HTTP',
      outcome: 'TIMEOUT',
      executionCount: 1n,
      avgDurationMs: 500,
      minDurationMs: 500,
      maxDurationMs: 500,
    },
    {
      executionDate: at('2026-03-02T00:00:00Z'),
      jobType: 'HTTP',
      outcome: 'CANCELLED',
      executionCount: 1n,
      avgDurationMs: null,
      minDurationMs: null,
      maxDurationMs: null,
    },
  ];

  it('groups finished runs by UTC day of their slot, job type and outcome, through the Prisma client', async () => {
    const rows = await db.executionStat.findMany({
      orderBy: [{ executionDate: 'asc' }, { jobType: 'asc' }, { outcome: 'asc' }],
    });
    expect(rows).toEqual(expected);
  });

  it('puts a run on its UTC day even in a session whose time zone is elsewhere', async () => {
    const days = await withClient(tdb.url, async (client) => {
      const zone = await client.query<{ TimeZone: string }>('SHOW timezone');
      const result = await client.query<{ day: string; n: string }>(
        `SELECT to_char(execution_date, 'YYYY-MM-DD') AS day, sum(execution_count)::text AS n
         FROM execution_stats GROUP BY 1 ORDER BY 1`,
      );
      return { zone: zone.rows[0]?.TimeZone, days: result.rows };
    });
    expect(days).toEqual({
      zone: 'Asia/Tokyo',
      days: [
        { day: '2026-03-01', n: '4' },
        { day: '2026-03-02', n: '2' },
      ],
    });
  });
});
