import type { JobTypeName } from './job-types.ts';

/** Every permission a role can carry. */
export const PERMISSIONS = [
  'job:read',
  'job:write',
  'job:execute',
  'job:delete',
  'job:import',
  'job:export',
  // Defining or changing SCRIPT jobs: code that runs on the workers (with their network reach).
  'script:write',
  'execution:read',
  'execution:stop',
  'variable:read',
  'variable:write',
  'webhook:write',
  'dlq:manage',
  'user:manage',
  'role:assign',
  'audit:read',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

/**
 * Job types whose definition needs a permission besides job:write, because their payload is code
 * run on the workers. Every path that creates or changes a job (POST, PUT, PATCH, and any future
 * import or multi-step definition holding such a payload) checks it.
 */
export const DEFINITION_PERMISSIONS: Readonly<Partial<Record<JobTypeName, Permission>>> = Object.freeze({
  SCRIPT: 'script:write',
});

export interface BuiltinRole {
  readonly name: 'ADMIN' | 'OPERATOR' | 'VIEWER' | 'USER';
  readonly description: string;
  readonly permissions: readonly Permission[];
}

/** Roles every installation has; they are seeded at start and cannot be deleted. */
export const BUILTIN_ROLES: readonly BuiltinRole[] = [
  { name: 'ADMIN', description: 'Everything, on every owner’s objects', permissions: PERMISSIONS },
  // Not script:write: running code on the workers is granted on purpose (a custom role), not with
  // the right to operate jobs.
  {
    name: 'OPERATOR',
    description: 'Runs and repairs jobs: define (SCRIPT jobs excepted), trigger, stop, manage the DLQ',
    permissions: [
      'job:read',
      'job:write',
      'job:execute',
      'job:delete',
      'job:import',
      'job:export',
      'execution:read',
      'execution:stop',
      'variable:read',
      'variable:write',
      'webhook:write',
      'dlq:manage',
    ],
  },
  { name: 'VIEWER', description: 'Reads jobs and runs', permissions: ['job:read', 'execution:read'] },
  {
    name: 'USER',
    description: 'Owns and runs their own jobs',
    permissions: [
      'job:read',
      'job:write',
      'job:execute',
      'job:delete',
      'execution:read',
      'execution:stop',
      'variable:read',
      'variable:write',
      'webhook:write',
    ],
  },
];
