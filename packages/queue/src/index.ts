export * from './redis.ts';
export * from './queues.ts';
