// pnpm db:migrate — applies prisma/migrations to DATABASE_URL (created if missing).

import { migrate } from '../src/migrate.ts';

const DEFAULT_URL = 'postgresql://postgres@127.0.0.1:5432/chronos';

function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

const url = process.env['DATABASE_URL'] ?? DEFAULT_URL;
try {
  console.log(`migrating ${redacted(url)}`);
  await migrate(url, { log: (line) => console.log(line) });
} catch (error) {
  console.error(`db:migrate failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
