import {
  ConflictError,
  MIN_SECRET_LENGTH,
  ValidationError,
  createMasker,
  mergeVariables,
  newId,
  renderDeepWithSecrets,
  templateVariables,
  type Masker,
  type SecretBox,
  type TemplateVar,
} from '@chronos/core';
import type { Db, JobPayload, Variable } from '@chronos/db';
import type { WithinTransaction } from './jobs.ts';

export interface VariableInput {
  ownerId: string;
  name: string;
  value: string;
  sensitive?: boolean;
  /** A job-scoped variable overrides the owner's global one of the same name for that job. */
  jobId?: string | null;
  description?: string | null;
}

export interface SetVariableOptions {
  /** Refuse (ConflictError) when the scope already has a variable of that name, instead of replacing it. */
  createOnly?: boolean;
  /** Runs inside the change's transaction with the stored row (an audit event, say): all or nothing. */
  withinTransaction?: WithinTransaction<Variable>;
}

/**
 * Creates or replaces a variable. A sensitive value is stored encrypted (AES-256-GCM, the row id as
 * associated data, the key id beside it); the database never holds its plaintext. Returns the row
 * as committed.
 */
export async function setVariable(
  db: Db,
  box: SecretBox | undefined,
  input: VariableInput,
  opts: SetVariableOptions = {},
): Promise<Variable> {
  const sensitive = input.sensitive ?? false;
  if (sensitive && !box)
    throw new ValidationError('sensitive variables need ENCRYPTION_KEY to be configured', [
      { path: 'sensitive', message: 'ENCRYPTION_KEY is not set on this deployment' },
    ]);
  if (sensitive && input.value.length < MIN_SECRET_LENGTH)
    throw new ValidationError(`a sensitive value needs at least ${MIN_SECRET_LENGTH} characters`, [
      {
        path: 'value',
        message: `a sensitive value needs at least ${MIN_SECRET_LENGTH} characters (shorter ones cannot be masked)`,
      },
    ]);
  const scope = input.jobId ? 'JOB' : 'GLOBAL';
  return db.$transaction(async (tx) => {
    const existing = await tx.variable.findFirst({
      where: { name: input.name, scope, ownerId: input.ownerId, jobId: input.jobId ?? null },
      select: { id: true },
    });
    if (existing && opts.createOnly)
      throw new ConflictError(`a variable named ${input.name} already exists in this scope`);
    const id = existing?.id ?? newId();
    const value = sensitive ? box!.encrypt(input.value, id) : input.value;
    const keyId = sensitive ? box!.currentKeyId : null;
    const data = { value, isSensitive: sensitive, keyId, description: input.description ?? null };
    // Two creates of one name at once: the unique index refuses the second (a conflict, too).
    const row = existing
      ? await tx.variable.update({ where: { id }, data })
      : await tx.variable.create({
          data: { id, name: input.name, scope, ownerId: input.ownerId, jobId: input.jobId ?? null, ...data },
        });
    await opts.withinTransaction?.(tx, row);
    return row;
  });
}

/** The columns of a payload that are executor input (everything but ids). */
export type PayloadFields = Omit<JobPayload, 'id' | 'jobId'>;

export interface RunInputs {
  payload: PayloadFields;
  /** Masks every sensitive value the payload used: apply to logs, outputs and errors. */
  masker: Masker;
}

/**
 * Resolves `{{…}}` in every string of a run's payload, in one literal pass: `{{var.NAME}}` (the job's
 * variable, else its owner's global one; sensitive values decrypted here, in the worker, only),
 * `{{run.*}}`, `{{job.*}}`, `{{trigger.*}}`. An unknown name fails with a TemplateError naming it.
 */
export async function resolveRunInputs(
  db: Db,
  box: SecretBox | undefined,
  args: {
    job: { id: string; name: string; ownerId: string };
    run: { id: string; scheduledTime: Date; attempt: number; idempotencyKey: string };
    payload: PayloadFields;
    trigger?: { body?: unknown; query?: Record<string, string>; headers?: Record<string, string> } | null;
  },
): Promise<RunInputs> {
  const names = [...templateVariables(args.payload)];
  const rows =
    names.length === 0
      ? []
      : await db.variable.findMany({
          where: {
            name: { in: names },
            OR: [
              { scope: 'GLOBAL', ownerId: args.job.ownerId },
              { scope: 'JOB', jobId: args.job.id },
            ],
          },
        });
  const toVar = (r: (typeof rows)[number]): [string, TemplateVar] => {
    if (!r.isSensitive) return [r.name, { value: r.value, sensitive: false }];
    if (!box)
      throw new ValidationError(`variable "${r.name}" is sensitive but ENCRYPTION_KEY is not configured`);
    return [r.name, { value: box.decrypt(r.value, r.id), sensitive: true }];
  };
  const vars = mergeVariables(
    rows.filter((r) => r.scope === 'GLOBAL').map(toVar),
    rows.filter((r) => r.scope === 'JOB').map(toVar),
  );
  const { value, secretsUsed } = renderDeepWithSecrets(args.payload, {
    vars,
    run: args.run,
    job: { id: args.job.id, name: args.job.name },
    ...(args.trigger ? { trigger: args.trigger } : {}),
  });
  // Every sensitive value known for the job is masked, used by the template or not.
  const secrets = [...secretsUsed, ...[...vars.values()].filter((v) => v.sensitive).map((v) => v.value)];
  return { payload: value, masker: createMasker(secrets) };
}
