import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.ts';
import { openApiPath } from '../src/openapi.ts';
import { startTestApi, type TestApi } from './harness.ts';

let t: TestApi;
let doc: {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown[]; responses: object }>>;
};

beforeAll(async () => {
  t = await startTestApi('openapi');
  const res = await fetch(`${t.api}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as typeof doc;
});

afterAll(async () => {
  await t?.stop();
});

/** `METHOD /path` of every route Express actually serves under /api/v1. */
function servedRoutes(): string[] {
  const { api } = createApp(t.deps);
  const out: string[] = [];
  for (const layer of api.router.stack as { route?: { path: string; methods: Record<string, boolean> } }[]) {
    if (!layer.route) continue;
    for (const [method, on] of Object.entries(layer.route.methods))
      if (on && method !== '_all') out.push(`${method.toUpperCase()} ${openApiPath(layer.route.path)}`);
  }
  return out.sort();
}

function documentedRoutes(): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every route the API serves, and every documented route is served', () => {
    const served = servedRoutes();
    expect(served.length).toBeGreaterThan(5);
    expect(documentedRoutes()).toEqual(served);
  });

  it('answers each documented route with something other than the catch-all 404', async () => {
    for (const entry of documentedRoutes()) {
      const [method, path] = entry.split(' ') as [string, string];
      const url = path.replace(/\{[^}]+\}/g, 'x');
      const res = await fetch(`${t.api}${url}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'GET' || method === 'DELETE' ? undefined : '{}',
      });
      const body = res.headers.get('content-type')?.includes('json')
        ? ((await res.json()) as { detail?: string })
        : {};
      expect({ entry, detail: body.detail ?? '' }).not.toEqual({
        entry,
        detail: `No route for ${method} ${url}`,
      });
    }
  });

  it('marks public routes without security and every other route with the bearer scheme', () => {
    expect(doc.paths['/auth/login']?.post?.security).toEqual([]);
    expect(doc.paths['/auth/me']?.get?.security).toEqual([{ bearer: [] }]);
  });

  it('documents 503 with Retry-After on every route (load shedding, PostgreSQL or Redis down)', () => {
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        const unavailable = (op.responses as Record<string, object | undefined>)['503'];
        expect({ route: `${method} ${path}`, ...unavailable }).toMatchObject({
          route: `${method} ${path}`,
          headers: { 'Retry-After': { $ref: '#/components/headers/RetryAfter' } },
          content: { 'application/problem+json': {} },
        });
      }
  });

  it('describes every request body as strict: each object with fields refuses others', () => {
    const full = doc as unknown as {
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>
      >;
      components: { schemas: Record<string, unknown> };
    };
    const loose: string[] = [];
    const seen = new Set<unknown>();
    const visit = (node: unknown, where: string): void => {
      if (!node || typeof node !== 'object' || seen.has(node)) return;
      seen.add(node);
      const n = node as Record<string, unknown>;
      if (typeof n.$ref === 'string') {
        const name = n.$ref.replace('#/components/schemas/', '');
        return visit(full.components.schemas[name], name);
      }
      if (n.properties && n.additionalProperties !== false) loose.push(where);
      for (const [k, v] of Object.entries(n)) visit(v, k === 'properties' ? where : `${where}.${k}`);
    };
    let bodies = 0;
    for (const [path, ops] of Object.entries(full.paths))
      for (const [method, op] of Object.entries(ops)) {
        const schema = op.requestBody?.content['application/json']?.schema;
        if (!schema) continue;
        bodies++;
        visit(schema, `${method.toUpperCase()} ${path}`);
      }
    expect(bodies).toBeGreaterThan(20);
    expect(loose).toEqual([]);
    for (const ops of Object.values(doc.paths))
      for (const op of Object.values(ops) as { requestBody?: unknown; responses: Record<string, unknown> }[])
        if (op.requestBody) expect(op.responses['415']).toBeDefined();
  });

  it('is rendered at /docs from local assets', async () => {
    const page = await fetch(`${t.base}/docs`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/docs/assets/swagger-ui-bundle.js');
    const bundle = await fetch(`${t.base}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    const init = await (await fetch(`${t.base}/docs/init.js`)).text();
    expect(init).toContain('/api/v1/openapi.json');
  });
});
