// Job definitions for the /jobs test files (no state: each file starts its own API).

/** An hour from now, whole seconds, as ISO-8601. */
export const inAnHour = () => new Date(Math.ceil(Date.now() / 1000) * 1000 + 3_600_000).toISOString();

/** A DUMMY job that fires every day at 02:00 UTC. */
export function dummyJob(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    type: 'DUMMY',
    schedule: { type: 'CRON', cronExpression: '0 2 * * *', timezone: 'UTC' },
    payload: { metadata: { sleepMs: 0 } },
    ...extra,
  };
}

/** An HTTP job with a literal basic-auth password (the API must never show it). */
export function httpJob(name: string, password = 'hunter2-literal') {
  return {
    name,
    type: 'HTTP',
    schedule: { type: 'INTERVAL', intervalSeconds: 300 },
    payload: {
      httpUrl: 'https://example.test/hook',
      httpMethod: 'POST',
      httpHeaders: { 'X-Api-Key': 'key-literal-123', Accept: 'application/json' },
      httpAuth: { type: 'BASIC', username: 'svc', password },
    },
    retryPolicy: { maxAttempts: 3, backoffStrategy: 'EXPONENTIAL', backoffSeconds: 5, retryOn: ['HTTP_5XX'] },
  };
}
