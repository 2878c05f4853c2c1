/** Every permission a role can carry. */
export const PERMISSIONS = [
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
  'user:manage',
  'role:assign',
  'audit:read',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

export interface BuiltinRole {
  readonly name: 'ADMIN' | 'OPERATOR' | 'VIEWER' | 'USER';
  readonly description: string;
  readonly permissions: readonly Permission[];
}

/** Roles every installation has; they are seeded at start and cannot be deleted. */
export const BUILTIN_ROLES: readonly BuiltinRole[] = [
  { name: 'ADMIN', description: 'Everything, on every owner’s objects', permissions: PERMISSIONS },
  {
    name: 'OPERATOR',
    description: 'Runs and repairs jobs: define, trigger, stop, manage the DLQ',
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
