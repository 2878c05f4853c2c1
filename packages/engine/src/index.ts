export * from './planner.ts';
export * from './spec.ts';
export * from './ledger.ts';
export * from './enqueue.ts';
export * from './changes.ts';
export * from './scheduler.ts';
export * from './job-changes.ts';
export * from './jobs.ts';
