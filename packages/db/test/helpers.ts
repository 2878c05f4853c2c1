import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { testServerUrl } from '../src/testing.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SCHEMA_PATH = fileURLToPath(new URL('../../../prisma/schema.prisma', import.meta.url));
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));

/** A database name and URL that nothing has created yet (the test creates it through migrate()). */
export function freshDatabase(label: string): { name: string; url: string } {
  const name = `chronos_test_${label}_${randomBytes(4).toString('hex')}`;
  const url = new URL(testServerUrl());
  url.pathname = `/${name}`;
  return { name, url: url.toString() };
}

/** Runs `use` with a connected pg client on `url`, closing it afterwards. */
export async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected the promise to reject');
}
