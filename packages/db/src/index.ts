export {
  createDb,
  createPool,
  type CreateDbOptions,
  type CreatePoolOptions,
  type Db,
  type Pool,
} from './client.ts';
export { isDatabaseUnavailable } from './unavailable.ts';
export {
  DEFAULT_MIGRATIONS_DIR,
  diffSchemas,
  ensureDatabase,
  migrate,
  MigrationError,
  type MigrateOptions,
  type MigrateResult,
} from './migrate.ts';
// PrismaClient, the Prisma namespace, every enum and every model / view type.
export * from './generated/prisma/client.ts';
