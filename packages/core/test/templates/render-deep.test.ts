import { describe, expect, it } from 'vitest';
import {
  TemplateError,
  mergeVariables,
  renderDeep,
  renderDeepWithSecrets,
  templateVariables,
} from '../../src/index.ts';
import { scope, vars } from './helpers.ts';

const payload = {
  method: 'POST',
  url: 'https://{{ var.HOST }}/runs/{{ run.id }}',
  headers: { Authorization: 'Bearer {{ var.API_KEY }}', '{{ var.HOST }}': 'header names stay literal' },
  query: { attempt: '{{ run.attempt }}', region: '{{ trigger.query.region }}' },
  body: {
    job: '{{ job.name }}',
    at: '{{ run.scheduledTime }}',
    order: '{{ trigger.body.order }}',
    list: ['{{ var.app.env }}', 7, true, null, { deep: ['{{ trigger.headers.x-request-id }}'] }],
  },
  env: { TOKEN: '{{ var.API_KEY }}', SHELL_LIKE: '${HOME}' },
  timeoutMs: 5000,
};

describe('renderDeep', () => {
  it('renders every string value in a nested payload and keeps keys and non-strings', () => {
    expect(renderDeep(payload, scope())).toEqual({
      method: 'POST',
      url: 'https://api.example.com/runs/01JRUN0000000000000000000A',
      headers: { Authorization: 'Bearer s3cr3t-token', '{{ var.HOST }}': 'header names stay literal' },
      query: { attempt: '2', region: 'eu' },
      body: {
        job: 'nightly-report',
        at: '2026-03-29T01:30:00.000Z',
        order: '{"id":42,"items":[{"sku":"A-1"},{"sku":"B-2"}],"note":null,"paid":true}',
        list: ['prod', 7, true, null, { deep: ['req-7'] }],
      },
      env: { TOKEN: 's3cr3t-token', SHELL_LIKE: '${HOME}' },
      timeoutMs: 5000,
    });
  });

  it('returns a new value and leaves the input untouched', () => {
    const before = structuredClone(payload);
    const out = renderDeep(payload, scope());
    expect(payload).toEqual(before);
    expect(out).not.toBe(payload);
    expect(out.headers).not.toBe(payload.headers);
  });

  it('renders a bare string and passes scalars through', () => {
    expect(renderDeep('{{ job.name }}', scope())).toBe('nightly-report');
    expect(renderDeep(3, scope())).toBe(3);
    expect(renderDeep(null, scope())).toBeNull();
  });

  it('keeps a JSON "__proto__" key as data', () => {
    const input = JSON.parse('{"__proto__": {"x": "{{ job.id }}"}}') as Record<string, unknown>;
    const out = renderDeep(input, scope());
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(out['__proto__']).toEqual({ x: '01JJOB0000000000000000000B' });
  });

  it('reports unknown names from the whole payload in one error', () => {
    const bad = { a: '{{ var.ONE }}', b: ['{{ var.TWO }}', { c: '{{ var.ONE }} {{ trigger.body.nope }}' }] };
    expect(() => renderDeep(bad, scope())).toThrow(
      'unknown variables "var.ONE", "var.TWO", "trigger.body.nope"',
    );
  });

  it('locates a syntax error in the payload', () => {
    const bad = { steps: [{ url: 'ok' }, { url: 'https://{{ var.HOST' }] };
    try {
      renderDeep(bad, scope());
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(TemplateError);
      const e = error as TemplateError;
      expect(e.code).toBe('TEMPLATE_SYNTAX');
      expect(e.location).toBe('steps[1].url');
      expect(e.position).toBe(8);
      expect(e.message).toBe(
        'template syntax error at position 8 in steps[1].url: "{{" without a closing "}}"',
      );
    }
  });
});

describe('renderDeepWithSecrets', () => {
  it('returns the sensitive values actually used', () => {
    const s = scope({
      vars: vars({
        HOST: 'api.example.com',
        API_KEY: { value: 's3cr3t-token', sensitive: true },
        UNUSED: { value: 'never-inserted', sensitive: true },
        'app.env': 'prod',
      }),
    });
    const { value, secretsUsed } = renderDeepWithSecrets(payload, s);
    expect(secretsUsed).toEqual(['s3cr3t-token']);
    expect(value.env.TOKEN).toBe('s3cr3t-token');
  });

  it('returns no secrets when only plain values are used', () => {
    expect(renderDeepWithSecrets({ a: '{{ var.HOST }}' }, scope()).secretsUsed).toEqual([]);
  });
});

describe('templateVariables', () => {
  it('lists the var names a payload uses, without the var. prefix, values only', () => {
    expect(templateVariables(payload)).toEqual(new Set(['HOST', 'API_KEY', 'app.env']));
  });

  it('ignores escaped tags and non-var paths', () => {
    expect(templateVariables({ a: '{{{{ var.X }} {{ run.id }} {{ trigger.body }}' })).toEqual(new Set());
  });

  it('rejects malformed templates like rendering does', () => {
    expect(() => templateVariables({ a: ['{{ var.A }}', '{{ nope.B }}'] })).toThrow(
      'template syntax error at position 0 in a[1]: unknown root "nope"',
    );
  });
});

describe('mergeVariables', () => {
  it('lets a job-scoped variable win over a global one of the same name', () => {
    const globals = vars({
      TOKEN: { value: 'global-secret', sensitive: true },
      REGION: 'eu',
      ONLY_GLOBAL: 'g',
    });
    const job = vars({ TOKEN: 'job-plain', REGION: { value: 'us-secret', sensitive: true }, ONLY_JOB: 'j' });
    expect(mergeVariables(globals, job)).toEqual(
      vars({
        TOKEN: 'job-plain',
        REGION: { value: 'us-secret', sensitive: true },
        ONLY_GLOBAL: 'g',
        ONLY_JOB: 'j',
      }),
    );
  });

  it('accepts entry lists and does not change its inputs', () => {
    const globals = vars({ A: '1' });
    const merged = mergeVariables(globals, [['A', { value: '2', sensitive: false }]]);
    expect(merged.get('A')?.value).toBe('2');
    expect(globals.get('A')?.value).toBe('1');
  });
});
