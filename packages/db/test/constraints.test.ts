import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';
import { rejection } from './helpers.ts';

type Row = Record<string, unknown>;

let tdb: TestDatabase;
let client: pg.Client;

/** A 26-character id (the width of the ULID columns). */
function id(): string {
  return randomUUID().replace(/-/g, '').slice(0, 26).toUpperCase();
}

async function insert(table: string, row: Row): Promise<Row> {
  const columns = Object.keys(row);
  const sql =
    `INSERT INTO ${pg.escapeIdentifier(table)} (${columns.map((c) => pg.escapeIdentifier(c)).join(', ')}) ` +
    `VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`;
  const result = await client.query(sql, Object.values(row));
  return result.rows[0] as Row;
}

/** Runs `work` in a transaction that is always rolled back, so every test starts from the fixture. */
async function rolledBack<T>(work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    return await work();
  } finally {
    await client.query('ROLLBACK');
  }
}

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const result = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params);
  return result.rows[0]?.n ?? -1;
}

const owner = { id: id(), email: 'owner@example.com', password_hash: 'x' };
const httpJob = { id: id(), owner_id: owner.id, name: 'ping', type: 'HTTP' };

/** A valid row of each table the checks guard, all hanging off `httpJob`. */
function base(table: string): Row {
  switch (table) {
    case 'users':
      return { id: id(), email: `${id()}@example.com`, password_hash: 'x' };
    case 'jobs':
      return { id: id(), owner_id: owner.id, name: `job-${id()}`, type: 'HTTP' };
    case 'job_schedules':
      return { job_id: httpJob.id, schedule_type: 'CRON', cron_expression: '*/5 * * * *' };
    case 'job_payloads':
      return { job_id: httpJob.id, type: 'HTTP' };
    case 'retry_policies':
      return { job_id: httpJob.id };
    case 'job_runs':
      return { id: id(), job_id: httpJob.id, idempotency_key: `${httpJob.id}-1`, scheduled_time: new Date() };
    case 'variables':
      return { id: id(), name: 'API_KEY', value: 'v', owner_id: owner.id };
    case 'webhooks':
      return { id: id(), job_id: httpJob.id, secret: 's' };
    case 'job_stats':
      return { job_id: httpJob.id };
    default:
      throw new Error(`no base row for ${table}`);
  }
}

interface CheckCase {
  constraint: string;
  table: string;
  bad: Row[];
  good: Row[];
}

const CHECK_CASES: CheckCase[] = [
  {
    constraint: 'job_schedules_consistency_check',
    table: 'job_schedules',
    bad: [
      { schedule_type: 'ONCE', cron_expression: null, run_at: null },
      { schedule_type: 'CRON', cron_expression: null },
      { schedule_type: 'INTERVAL', cron_expression: null, interval_seconds: null },
      { schedule_type: 'INTERVAL', cron_expression: '* * * * *', interval_seconds: null },
    ],
    good: [
      { schedule_type: 'ONCE', cron_expression: null, run_at: new Date('2030-01-01T00:00:00Z') },
      { schedule_type: 'CRON', cron_expression: '0 9 * * MON-FRI' },
      { schedule_type: 'INTERVAL', cron_expression: null, interval_seconds: 30 },
    ],
  },
  {
    constraint: 'job_schedules_interval_positive_check',
    table: 'job_schedules',
    bad: [{ interval_seconds: 0 }, { schedule_type: 'INTERVAL', interval_seconds: -5 }],
    good: [{ schedule_type: 'INTERVAL', interval_seconds: 1 }],
  },
  {
    constraint: 'job_schedules_window_check',
    table: 'job_schedules',
    bad: [
      { start_at: new Date('2030-01-02T00:00:00Z'), end_at: new Date('2030-01-01T00:00:00Z') },
      { start_at: new Date('2030-01-01T00:00:00Z'), end_at: new Date('2030-01-01T00:00:00Z') },
    ],
    good: [
      { start_at: new Date('2030-01-01T00:00:00Z'), end_at: new Date('2030-01-02T00:00:00Z') },
      { start_at: null, end_at: new Date('2030-01-01T00:00:00Z') },
    ],
  },
  {
    constraint: 'job_schedules_jitter_check',
    table: 'job_schedules',
    bad: [{ jitter_seconds: -1 }, { jitter_seconds: 3601 }],
    good: [{ jitter_seconds: 0 }, { jitter_seconds: 3600 }],
  },
  {
    constraint: 'job_schedules_misfire_check',
    table: 'job_schedules',
    bad: [{ misfire_threshold_seconds: -1 }, { misfire_max_catch_up: 0 }],
    good: [{ misfire_threshold_seconds: 0, misfire_max_catch_up: 1 }, { misfire_threshold_seconds: null }],
  },
  {
    constraint: 'retry_policies_sanity_check',
    table: 'retry_policies',
    bad: [{ max_attempts: 0 }, { max_attempts: 11 }, { backoff_seconds: -1 }, { backoff_seconds: 3601 }],
    good: [
      { max_attempts: 1, backoff_seconds: 0 },
      { max_attempts: 10, backoff_seconds: 3600 },
    ],
  },
  {
    constraint: 'jobs_alert_threshold_check',
    table: 'jobs',
    bad: [{ alert_threshold: 0 }],
    good: [{ alert_threshold: 1 }],
  },
  {
    constraint: 'jobs_timeout_check',
    table: 'jobs',
    bad: [{ timeout_seconds: 0 }, { timeout_seconds: -1 }],
    good: [{ timeout_seconds: 1 }, { timeout_seconds: null }],
  },
  {
    constraint: 'job_payloads_timeout_check',
    table: 'job_payloads',
    bad: [{ timeout_seconds: 0 }],
    good: [{ timeout_seconds: 1 }, { timeout_seconds: null }],
  },
  {
    constraint: 'job_runs_attempt_check',
    table: 'job_runs',
    bad: [{ attempt: 0 }],
    good: [{ attempt: 1 }],
  },
  {
    constraint: 'job_runs_idempotency_key_check',
    table: 'job_runs',
    bad: [{ idempotency_key: 'job:1700000000000' }],
    good: [{ idempotency_key: 'job-1700000000000' }],
  },
  {
    constraint: 'job_runs_duration_check',
    table: 'job_runs',
    bad: [{ duration_ms: -1 }],
    good: [{ duration_ms: 0 }, { duration_ms: null }],
  },
  {
    constraint: 'variables_scope_check',
    table: 'variables',
    bad: [
      { scope: 'GLOBAL', job_id: httpJob.id },
      { scope: 'JOB', job_id: null },
    ],
    good: [
      { scope: 'GLOBAL', job_id: null },
      { scope: 'JOB', job_id: httpJob.id },
    ],
  },
  {
    constraint: 'variables_name_check',
    table: 'variables',
    bad: [{ name: '1st' }, { name: 'has-dash' }, { name: 'two words' }, { name: '' }, { name: 'x{y}' }],
    good: [{ name: 'API_KEY' }, { name: '_private' }, { name: 'db.password2' }],
  },
  {
    constraint: 'webhooks_rate_limit_check',
    table: 'webhooks',
    bad: [{ rate_limit_per_minute: 0 }],
    good: [{ rate_limit_per_minute: 1 }],
  },
  {
    constraint: 'job_stats_counts_check',
    table: 'job_stats',
    bad: [
      { total_executions: -1 },
      { total_executions: 1, successful_executions: -1 },
      { total_executions: 1, failed_executions: -1 },
      { total_duration_ms: -1 },
      { consecutive_failures: -1 },
      { total_executions: 2, successful_executions: 2, failed_executions: 1 },
    ],
    good: [{ total_executions: 3, successful_executions: 2, failed_executions: 1, consecutive_failures: 1 }],
  },
  {
    constraint: 'users_email_check',
    table: 'users',
    bad: [{ email: 'nobody' }, { email: '@example.com' }],
    good: [{ email: 'a@example.com' }],
  },
];

beforeAll(async () => {
  tdb = await createTestDatabase('constraints');
  client = new pg.Client({ connectionString: tdb.url });
  await client.connect();
  await insert('users', owner);
  await insert('jobs', httpJob);
});

afterAll(async () => {
  await client?.end();
  await tdb?.drop();
});

describe('CHECK constraints', () => {
  describe.each(CHECK_CASES)('$constraint', ({ constraint, table, bad, good }) => {
    it.each(bad)('rejects %o', async (override) => {
      const error = await rejection(rolledBack(() => insert(table, { ...base(table), ...override })));
      expect(error).toMatchObject({ code: '23514', constraint });
      expect(error.message).toContain(constraint);
    });

    it.each(good)('accepts %o', async (override) => {
      const row = await rolledBack(() => insert(table, { ...base(table), ...override }));
      expect(row).toMatchObject(override);
    });
  });

  it('reaches Prisma callers with the constraint name (a run id key with a colon)', async () => {
    const error = await rejection(
      tdb.db.jobRun.create({
        data: { id: id(), jobId: httpJob.id, idempotencyKey: 'bad:key', scheduledTime: new Date() },
      }),
    );
    expect(error.message).toContain('job_runs_idempotency_key_check');
  });
});

describe('payload type', () => {
  it('cannot differ from the type of its job', async () => {
    const error = await rejection(
      rolledBack(() => insert('job_payloads', { job_id: httpJob.id, type: 'EMAIL' })),
    );
    expect(error).toMatchObject({ code: '23503', constraint: 'job_payloads_job_id_type_fkey' });
  });

  it('cannot be changed on its own', async () => {
    const error = await rejection(
      rolledBack(async () => {
        await insert('job_payloads', base('job_payloads'));
        await client.query(`UPDATE job_payloads SET type = 'EMAIL' WHERE job_id = $1`, [httpJob.id]);
      }),
    );
    expect(error).toMatchObject({ code: '23503', constraint: 'job_payloads_job_id_type_fkey' });
  });

  it("follows its job when the job's type changes", async () => {
    const type = await rolledBack(async () => {
      await insert('job_payloads', base('job_payloads'));
      await client.query(`UPDATE jobs SET type = 'EMAIL' WHERE id = $1`, [httpJob.id]);
      const result = await client.query<{ type: string }>('SELECT type FROM job_payloads WHERE job_id = $1', [
        httpJob.id,
      ]);
      return result.rows[0]?.type;
    });
    expect(type).toBe('EMAIL');
  });
});

describe('variable names', () => {
  it('are unique per owner among GLOBAL variables', async () => {
    const error = await rejection(
      rolledBack(async () => {
        await insert('variables', { ...base('variables'), name: 'TOKEN' });
        await insert('variables', { ...base('variables'), name: 'TOKEN' });
      }),
    );
    expect(error).toMatchObject({ code: '23505', constraint: 'variables_global_name_key' });
  });

  it('may repeat across owners, and a JOB variable may shadow a GLOBAL one', async () => {
    const total = await rolledBack(async () => {
      const other = await insert('users', base('users'));
      await insert('variables', { ...base('variables'), name: 'TOKEN' });
      await insert('variables', { ...base('variables'), name: 'TOKEN', owner_id: other['id'] });
      await insert('variables', { ...base('variables'), name: 'TOKEN', scope: 'JOB', job_id: httpJob.id });
      return count(`variables WHERE name = 'TOKEN'`);
    });
    expect(total).toBe(3);
  });

  it('are unique per job among JOB variables', async () => {
    const error = await rejection(
      rolledBack(async () => {
        await insert('variables', { ...base('variables'), name: 'TOKEN', scope: 'JOB', job_id: httpJob.id });
        await insert('variables', { ...base('variables'), name: 'TOKEN', scope: 'JOB', job_id: httpJob.id });
      }),
    );
    expect(error).toMatchObject({ code: '23505', constraint: 'variables_job_id_name_key' });
  });
});

describe('deletes', () => {
  /** Every kind of row that hangs off a user, a role, a job, a run and a DLQ entry. */
  async function graph() {
    const user = await insert('users', base('users'));
    const assigner = await insert('users', base('users'));
    const role = await insert('roles', { name: `role-${id()}` });
    await insert('user_roles', { user_id: user['id'], role_id: role['id'], assigned_by: assigner['id'] });
    const job = await insert('jobs', { ...base('jobs'), owner_id: user['id'] });
    const jobId = job['id'];
    await insert('job_schedules', { ...base('job_schedules'), job_id: jobId });
    await insert('job_payloads', { job_id: jobId, type: 'HTTP' });
    await insert('retry_policies', { job_id: jobId });
    await insert('job_stats', { job_id: jobId });
    await insert('webhooks', { ...base('webhooks'), job_id: jobId });
    await insert('variables', { ...base('variables'), owner_id: user['id'], name: 'G' });
    await insert('variables', {
      ...base('variables'),
      owner_id: user['id'],
      name: 'J',
      scope: 'JOB',
      job_id: jobId,
    });
    const run = await insert('job_runs', {
      ...base('job_runs'),
      job_id: jobId,
      idempotency_key: `${String(jobId)}-1`,
    });
    const retry = await insert('job_runs', {
      ...base('job_runs'),
      job_id: jobId,
      idempotency_key: `${String(jobId)}-1`,
      attempt: 2,
      retry_of_id: run['id'],
    });
    await insert('job_run_logs', { run_id: run['id'], message: 'hello' });
    const dlq = await insert('dlq_events', {
      id: id(),
      job_id: jobId,
      run_id: run['id'],
      failure_reason: 'boom',
    });
    const replay = await insert('job_runs', {
      ...base('job_runs'),
      job_id: jobId,
      idempotency_key: `${String(jobId)}-replay`,
      trigger: 'REPLAY',
      dlq_event_id: dlq['id'],
    });
    const notification = await insert('notifications', {
      user_id: user['id'],
      job_id: jobId,
      run_id: run['id'],
      channel: 'EMAIL',
      target: 'ops@example.com',
      template_code: 'JOB_FAILED',
    });
    const audit = await insert('audit_events', {
      id: id(),
      entity_type: 'job',
      entity_id: String(jobId),
      action: 'create',
      user_id: user['id'],
    });
    return { user, assigner, role, job, run, retry, dlq, replay, notification, audit };
  }

  async function column(table: string, name: string, rowId: unknown): Promise<unknown> {
    const result = await client.query(
      `SELECT ${pg.escapeIdentifier(name)} AS v FROM ${pg.escapeIdentifier(table)} WHERE id = $1`,
      [rowId],
    );
    return (result.rows[0] as { v: unknown } | undefined)?.v;
  }

  it('of a job remove its schedule, payload, retry policy, stats, webhooks, JOB variables, runs, logs and DLQ entries', async () => {
    const after = await rolledBack(async () => {
      const g = await graph();
      await client.query('DELETE FROM jobs WHERE id = $1', [g.job['id']]);
      const jobId = [g.job['id']];
      return {
        schedules: await count('job_schedules WHERE job_id = $1', jobId),
        payloads: await count('job_payloads WHERE job_id = $1', jobId),
        retryPolicies: await count('retry_policies WHERE job_id = $1', jobId),
        stats: await count('job_stats WHERE job_id = $1', jobId),
        webhooks: await count('webhooks WHERE job_id = $1', jobId),
        jobVariables: await count('variables WHERE job_id = $1', jobId),
        globalVariables: await count(`variables WHERE owner_id = $1 AND scope = 'GLOBAL'`, [g.user['id']]),
        runs: await count('job_runs WHERE job_id = $1', jobId),
        logs: await count('job_run_logs WHERE run_id = $1', [g.run['id']]),
        dlq: await count('dlq_events WHERE job_id = $1', jobId),
        notificationJob: await column('notifications', 'job_id', g.notification['id']),
        notificationRun: await column('notifications', 'run_id', g.notification['id']),
      };
    });
    expect(after).toEqual({
      schedules: 0,
      payloads: 0,
      retryPolicies: 0,
      stats: 0,
      webhooks: 0,
      jobVariables: 0,
      globalVariables: 1,
      runs: 0,
      logs: 0,
      dlq: 0,
      notificationJob: null,
      notificationRun: null,
    });
  });

  it('of a run remove its logs and detach its retries, DLQ entries and notifications', async () => {
    const after = await rolledBack(async () => {
      const g = await graph();
      await client.query('DELETE FROM job_runs WHERE id = $1', [g.run['id']]);
      return {
        logs: await count('job_run_logs WHERE run_id = $1', [g.run['id']]),
        retryOf: await column('job_runs', 'retry_of_id', g.retry['id']),
        dlqRun: await column('dlq_events', 'run_id', g.dlq['id']),
        notificationRun: await column('notifications', 'run_id', g.notification['id']),
        notificationJob: await column('notifications', 'job_id', g.notification['id']),
      };
    });
    expect(after).toMatchObject({ logs: 0, retryOf: null, dlqRun: null, notificationRun: null });
    expect(after.notificationJob).toEqual(expect.any(String));
  });

  it('of a DLQ entry detach the runs that replayed it', async () => {
    const replayOf = await rolledBack(async () => {
      const g = await graph();
      await client.query('DELETE FROM dlq_events WHERE id = $1', [g.dlq['id']]);
      return column('job_runs', 'dlq_event_id', g.replay['id']);
    });
    expect(replayOf).toBeNull();
  });

  it('of a user remove their jobs, roles, notifications and variables but keep the audit trail', async () => {
    const after = await rolledBack(async () => {
      const g = await graph();
      await client.query('DELETE FROM users WHERE id = $1', [g.user['id']]);
      const userId = [g.user['id']];
      return {
        jobs: await count('jobs WHERE owner_id = $1', userId),
        runs: await count('job_runs WHERE job_id = $1', [g.job['id']]),
        userRoles: await count('user_roles WHERE user_id = $1', userId),
        notifications: await count('notifications WHERE user_id = $1', userId),
        variables: await count('variables WHERE owner_id = $1', userId),
        auditEvents: await count('audit_events WHERE id = $1', [g.audit['id']]),
        auditUser: await column('audit_events', 'user_id', g.audit['id']),
      };
    });
    expect(after).toEqual({
      jobs: 0,
      runs: 0,
      userRoles: 0,
      notifications: 0,
      variables: 0,
      auditEvents: 1,
      auditUser: null,
    });
  });

  it('of the user who assigned a role keep the assignment, without its assigner', async () => {
    const assignments = await rolledBack(async () => {
      const g = await graph();
      await client.query('DELETE FROM users WHERE id = $1', [g.assigner['id']]);
      const result = await client.query('SELECT user_id, assigned_by FROM user_roles WHERE user_id = $1', [
        g.user['id'],
      ]);
      return result.rows;
    });
    expect(assignments).toEqual([{ user_id: expect.any(String), assigned_by: null }]);
  });

  it('of a role remove its assignments', async () => {
    const assignments = await rolledBack(async () => {
      const g = await graph();
      await client.query('DELETE FROM roles WHERE id = $1', [g.role['id']]);
      return count('user_roles WHERE role_id = $1', [g.role['id']]);
    });
    expect(assignments).toBe(0);
  });
});
