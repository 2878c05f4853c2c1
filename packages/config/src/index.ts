export * from './config.ts';
export type { TrustProxy } from './trust-proxy.ts';
