import type { TemplateScope, TemplateVar } from '../../src/index.ts';

export function vars(entries: Record<string, string | TemplateVar>): Map<string, TemplateVar> {
  return new Map(
    Object.entries(entries).map(([name, v]) => [
      name,
      typeof v === 'string' ? { value: v, sensitive: false } : v,
    ]),
  );
}

export function scope(overrides: Partial<TemplateScope> = {}): TemplateScope {
  return {
    vars: vars({
      HOST: 'api.example.com',
      API_KEY: { value: 's3cr3t-token', sensitive: true },
      'app.env': 'prod',
    }),
    run: {
      id: '01JRUN0000000000000000000A',
      scheduledTime: new Date('2026-03-29T01:30:00.000Z'),
      attempt: 2,
      idempotencyKey: '01JJOB0000000000000000000B-1774747800000',
    },
    job: { id: '01JJOB0000000000000000000B', name: 'nightly-report' },
    trigger: {
      body: {
        order: { id: 42, items: [{ sku: 'A-1' }, { sku: 'B-2' }], note: null, paid: true },
        text: 'hi',
      },
      query: { region: 'eu', 'filter.name': 'x' },
      headers: { 'X-Request-Id': 'req-7', 'content-type': 'application/json' },
    },
    ...overrides,
  };
}
