import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { offlineAdapterFactory } from '../src/engine-adapters.ts';
import { diffSchemas } from '../src/migrate.ts';
import { withSchemaEngine } from '../src/schema-engine.ts';
import { MIGRATIONS_DIR, rejection, SCHEMA_PATH } from './helpers.ts';

const schema = await readFile(SCHEMA_PATH, 'utf8');

/** Every migration's SQL, oldest first, as one text. */
async function allMigrations(): Promise<string> {
  const names = (await readdir(MIGRATIONS_DIR)).filter((name) => /^\d{14}_/.test(name)).sort();
  const texts = await Promise.all(
    names.map((n) => readFile(join(MIGRATIONS_DIR, n, 'migration.sql'), 'utf8')),
  );
  return texts.join('\n');
}

async function initMigration(): Promise<string> {
  const init = (await readdir(MIGRATIONS_DIR)).filter((name) => /^\d{14}_init$/.test(name));
  expect(init).toHaveLength(1);
  return readFile(join(MIGRATIONS_DIR, init[0] ?? '', 'migration.sql'), 'utf8');
}

/** schema.prisma with `lines` added after the line starting with `anchor`. */
function withLines(anchor: string, lines: string): string {
  const at = schema.indexOf(anchor);
  expect(at).toBeGreaterThan(-1);
  const lineEnd = schema.indexOf('\n', at) + 1;
  return schema.slice(0, lineEnd) + lines + schema.slice(lineEnd);
}

describe('diffSchemas', () => {
  it('finds nothing to do between a schema and itself', async () => {
    expect(await diffSchemas(schema, schema)).toBe('');
  });

  it('generated the first part of the init migration; the rest is hand-written SQL', async () => {
    const init = await initMigration();
    const marker = init.search(/\n-- =+\n-- Hand-written: what Prisma's schema language cannot express\./);
    expect(marker).toBeGreaterThan(0);
    expect(init.slice(0, marker)).toContain('CREATE TABLE "jobs"');
    expect(init.slice(marker)).not.toMatch(/CREATE TABLE|CREATE TYPE/);
  });

  it('the migrations create every table, type and index the schema declares, as Prisma writes them', async () => {
    const generated = await diffSchemas(null, schema);
    const all = await allMigrations();
    // Each generated statement (CREATE TABLE/TYPE/INDEX, foreign keys) appears in some migration.
    const statements = generated
      .split(/\n\n/)
      .map((s) => s.replace(/^-- \w+\n/, '').trim())
      .filter(Boolean);
    expect(statements.length).toBeGreaterThan(30);
    for (const statement of statements) expect(all).toContain(statement);
  });

  it('turns an added column into exactly one ALTER TABLE', async () => {
    const sql = await diffSchemas(schema, withLines('  pausedAt ', '  tags String[] @default([])\n'));
    expect(sql).toBe(
      '-- AlterTable\nALTER TABLE "jobs" ADD COLUMN     "tags" TEXT[] DEFAULT ARRAY[]::TEXT[];\n',
    );
  });

  it('leaves views to hand-written SQL: a changed view block produces no SQL', async () => {
    const changedView = withLines(
      '  avgDurationMs  Float?       @map("avg_duration_ms")',
      '  failedRuns BigInt @map("failed_runs")\n',
    );
    expect(changedView).not.toBe(schema);
    expect(await diffSchemas(schema, changedView)).toBe('');
  });

  it("rejects an invalid schema with Prisma's validation error", async () => {
    const error = await rejection(diffSchemas(null, `${schema}\nmodel Broken {\n  id Int\n}\n`));
    expect(error.code).toBe('P1012');
    expect(error.message).toContain('Broken');
  });

  it('runs diffs side by side on the one engine instance of the process', async () => {
    const added = withLines('  pausedAt ', '  tags String[] @default([])\n');
    const [same, changed, fromEmpty] = await Promise.all([
      diffSchemas(schema, schema),
      diffSchemas(schema, added),
      diffSchemas(null, schema),
    ]);
    expect(same).toBe('');
    expect(changed).toContain('ADD COLUMN     "tags"');
    expect(fromEmpty).toBe(await diffSchemas(null, schema));
  });

  it('recovers after a panic inside the engine: the panic surfaces, later diffs work', async () => {
    const panic = await rejection(
      withSchemaEngine({ adapterFactory: offlineAdapterFactory() }, (engine) => {
        engine.debugPanic();
        return Promise.resolve();
      }),
    );
    expect(panic.message).not.toContain('borrowed');
    expect(await diffSchemas(schema, schema)).toBe('');
  });
});
