export * from './job-types.ts';
export * from './idempotency.ts';
export * from './errors.ts';
export * from './ids.ts';
export * from './permissions.ts';
export * from './lifecycle.ts';
export * from './schedule/index.ts';
