import { describe, expect, it } from 'vitest';
import {
  PermanentJobError,
  TemplateError,
  renderTemplate,
  renderTemplateWithSecrets,
} from '../../src/index.ts';
import { scope, vars } from './helpers.ts';

function errorOf(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TemplateError) return error;
    throw error;
  }
  throw new Error('expected a TemplateError');
}

describe('renderTemplate substitutes', () => {
  const rows: { template: string; expected: string }[] = [
    { template: 'no tags at all', expected: 'no tags at all' },
    { template: '', expected: '' },
    { template: '{{var.HOST}}', expected: 'api.example.com' },
    { template: '{{ var.HOST }}', expected: 'api.example.com' },
    { template: '{{\tvar.HOST\n}}', expected: 'api.example.com' },
    {
      template: 'https://{{ var.HOST }}/v1?env={{var.app.env}}',
      expected: 'https://api.example.com/v1?env=prod',
    },
    { template: '{{ run.id }}', expected: '01JRUN0000000000000000000A' },
    { template: '{{ run.scheduledTime }}', expected: '2026-03-29T01:30:00.000Z' },
    { template: 'attempt {{ run.attempt }}', expected: 'attempt 2' },
    { template: '{{ run.idempotencyKey }}', expected: '01JJOB0000000000000000000B-1774747800000' },
    { template: '{{ job.id }}/{{ job.name }}', expected: '01JJOB0000000000000000000B/nightly-report' },
    { template: '{{ trigger.body.text }}', expected: 'hi' },
    { template: '{{ trigger.body.order.id }}', expected: '42' },
    { template: '{{ trigger.body.order.paid }}', expected: 'true' },
    { template: '{{ trigger.body.order.note }}', expected: 'null' },
    { template: '{{ trigger.body.order.items.1.sku }}', expected: 'B-2' },
    { template: '{{ trigger.body.order.items.0 }}', expected: '{"sku":"A-1"}' },
    {
      template: '{{ trigger.body }}',
      expected:
        '{"order":{"id":42,"items":[{"sku":"A-1"},{"sku":"B-2"}],"note":null,"paid":true},"text":"hi"}',
    },
    { template: '{{ trigger.query.region }}', expected: 'eu' },
    { template: '{{ trigger.query.filter.name }}', expected: 'x' },
    { template: '{{ trigger.headers.x-request-id }}', expected: 'req-7' },
    { template: '{{ trigger.headers.X-REQUEST-ID }}', expected: 'req-7' },
    { template: '{{ trigger.headers.Content-Type }}', expected: 'application/json' },
    { template: 'a }} b }', expected: 'a }} b }' },
    { template: '{ "id": "{{ run.id }}" }', expected: '{ "id": "01JRUN0000000000000000000A" }' },
    { template: '{"n":{{ trigger.body.order.id }}}', expected: '{"n":42}' },
  ];
  it.each(rows)('$template', ({ template, expected }) => {
    expect(renderTemplate(template, scope())).toBe(expected);
  });
});

describe('the {{{{ escape', () => {
  const rows: { template: string; expected: string }[] = [
    { template: '{{{{', expected: '{{' },
    { template: 'literal {{{{ var.HOST }} stays', expected: 'literal {{ var.HOST }} stays' },
    { template: '{{{{{{ var.HOST }}', expected: '{{api.example.com' },
    { template: '{{{{{', expected: '{{{' },
    { template: '{ {{ var.HOST }} }', expected: '{ api.example.com }' },
  ];
  it.each(rows)('$template → $expected', ({ template, expected }) => {
    expect(renderTemplate(template, scope())).toBe(expected);
  });
});

describe('substitution is single pass and literal', () => {
  const hostile = [
    '{{ var.OTHER }}',
    '{{{{',
    '${HOME}',
    '$(rm -rf /)',
    '`id`',
    '$&',
    "'; DROP TABLE x; --",
    '}}{{',
  ];
  it.each(hostile)('a value %j is inserted verbatim', (value) => {
    const s = scope({ vars: vars({ V: value, OTHER: 'must not appear' }) });
    expect(renderTemplate('[{{ var.V }}]', s)).toBe(`[${value}]`);
  });

  it('does not rescan trigger data either', () => {
    const s = scope({ trigger: { body: { x: '{{ var.HOST }}' }, headers: { h: '{{ run.id }}' } } });
    expect(renderTemplate('{{ trigger.body.x }} {{ trigger.headers.h }}', s)).toBe(
      '{{ var.HOST }} {{ run.id }}',
    );
    expect(renderTemplate('{{ trigger.body }}', s)).toBe('{"x":"{{ var.HOST }}"}');
  });

  it('does not resolve prototype properties', () => {
    const s = scope({ trigger: { body: {}, query: {} } });
    const e = errorOf(() => renderTemplate('{{ trigger.body.constructor }}{{ trigger.query.toString }}', s));
    expect(e.names).toEqual(['trigger.body.constructor', 'trigger.query.toString']);
  });
});

describe('unknown names', () => {
  it('throw a permanent TemplateError naming the variable', () => {
    const e = errorOf(() => renderTemplate('Bearer {{ var.API_TOKEN }}', scope()));
    expect(e).toBeInstanceOf(PermanentJobError);
    expect(e.retryable).toBe(false);
    expect(e.code).toBe('TEMPLATE_UNKNOWN_VARIABLE');
    expect(e.message).toBe('unknown variable "var.API_TOKEN"');
    expect(e.names).toEqual(['var.API_TOKEN']);
  });

  it('are all collected in one error, once each, in order of appearance', () => {
    const e = errorOf(() =>
      renderTemplate('{{var.B}} {{ var.A }} {{var.B}} {{ run.nope }} {{ job.owner }}', scope()),
    );
    expect(e.names).toEqual(['var.B', 'var.A', 'run.nope', 'job.owner']);
    expect(e.message).toBe('unknown variables "var.B", "var.A", "run.nope", "job.owner"');
  });

  const rows = [
    'var.host',
    'run',
    'run.id.x',
    'job',
    'job.name.first',
    'trigger',
    'trigger.body.missing',
    'trigger.body.order.items.2',
    'trigger.body.order.items.01',
    'trigger.body.order.id.x',
    'trigger.body.text.length',
    'trigger.query',
    'trigger.query.REGION',
    'trigger.headers',
    'trigger.headers.x-missing',
    'trigger.cookies.a',
  ];
  it.each(rows)('%s is unknown', (path) => {
    expect(errorOf(() => renderTemplate(`{{ ${path} }}`, scope())).names).toEqual([path]);
  });

  it('trigger paths are unknown when the run has no trigger', () => {
    const s = scope({ trigger: undefined });
    expect(errorOf(() => renderTemplate('{{ trigger.body }}{{ trigger.headers.a }}', s)).names).toEqual([
      'trigger.body',
      'trigger.headers.a',
    ]);
  });

  it('never put a value in the message', () => {
    const e = errorOf(() => renderTemplate('{{ var.API_KEY }} {{ var.NOPE }}', scope()));
    expect(e.message).not.toContain('s3cr3t-token');
  });
});

describe('syntax errors name the position', () => {
  const rows: { template: string; position: number; reason: RegExp }[] = [
    { template: 'abc {{ var.HOST', position: 4, reason: /without a closing/ },
    { template: '{{ var.A {{ var.B }}', position: 0, reason: /without a closing/ },
    { template: 'x{{}}', position: 1, reason: /empty tag/ },
    { template: 'x{{   }}', position: 1, reason: /empty tag/ },
    { template: '{{ env.HOME }}', position: 0, reason: /unknown root "env"/ },
    { template: '{{ Var.X }}', position: 0, reason: /unknown root "Var"/ },
    { template: '{{ HOST }}', position: 0, reason: /unknown root "HOST"/ },
    { template: '{{ var }}', position: 0, reason: /invalid variable name/ },
    { template: '{{ var.1X }}', position: 0, reason: /invalid variable name/ },
    { template: '{{ var. X }}', position: 0, reason: /invalid path/ },
    { template: '{{ var.A..B }}', position: 0, reason: /invalid path/ },
    { template: '{{ var.A | upper }}', position: 0, reason: /invalid path/ },
    { template: "{{ '{{' }}", position: 0, reason: /without a closing/ },
    { template: '{{ 1 + 1 }}', position: 0, reason: /invalid path/ },
    { template: 'ok {{ var.HOST }} then {{{ var.HOST }}}', position: 23, reason: /"\{\{\{" is not a tag/ },
    { template: '{{ trigger.body[0] }}', position: 0, reason: /invalid path/ },
  ];
  it.each(rows)('$template', ({ template, position, reason }) => {
    const e = errorOf(() => renderTemplate(template, scope()));
    expect(e.code).toBe('TEMPLATE_SYNTAX');
    expect(e.position).toBe(position);
    expect(e.message).toMatch(new RegExp(`at position ${position}`));
    expect(e.message).toMatch(reason);
  });
});

describe('renderTemplateWithSecrets', () => {
  it('reports the sensitive values it inserted, once each', () => {
    const s = scope({
      vars: vars({
        A: { value: 'alpha-secret', sensitive: true },
        B: { value: 'beta-secret', sensitive: true },
        PLAIN: 'not-secret',
      }),
    });
    const result = renderTemplateWithSecrets('{{var.A}} {{var.PLAIN}} {{var.A}}', s);
    expect(result.value).toBe('alpha-secret not-secret alpha-secret');
    expect(result.secretsUsed).toEqual(['alpha-secret']);
  });
});
