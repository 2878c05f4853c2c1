import { isRunnableJobType, payloadSchemas, type JobTypeName, type Masker } from '@chronos/core';
import type { RunStatus, TriggerSource } from '@chronos/db';

/**
 * The execution context of a run, kept in object storage beside the run row
 * (`runs/<runId>/context.json`): what the run was given (the resolved payload) and what it gave
 * back, with every sensitive value masked.
 */
export interface RunContext {
  runId: string;
  jobId: string;
  attempt: number;
  definitionVersion: number | null;
  trigger: TriggerSource;
  /**
   * The resolved payload (templates substituted), secrets masked: the fields of the job's type only
   * (a job_payloads row holds every type's columns, and their defaults), empty ones left out.
   */
  inputs: Record<string, unknown>;
  output: unknown;
  status: RunStatus;
  error: { message: string; code: string | null } | null;
  /** ISO-8601 UTC. */
  startedAt: string | null;
  endedAt: string | null;
}

/** The run columns a context is built from. */
export interface RunContextRun {
  id: string;
  jobId: string;
  attempt: number;
  definitionVersion: number | null;
  trigger: TriggerSource;
  status: RunStatus;
  errorMessage: string | null;
  errorCode: string | null;
  startTime: Date | null;
  endTime: Date | null;
}

/** The payload fields of each type that runs (its schema's keys). */
const FIELDS_OF = new Map<string, ReadonlySet<string>>(
  Object.entries(payloadSchemas).map(([type, schema]) => [type, new Set(Object.keys(schema.shape))]),
);

/**
 * The context document of a finished (or running) run, masked with the run's masker. `inputs` keeps
 * only the payload fields of the job's type: `type`, else the payload row's own `type` column.
 */
export function buildRunContext(args: {
  run: RunContextRun;
  inputs: Record<string, unknown>;
  output?: unknown;
  masker: Masker;
  type?: JobTypeName;
}): RunContext {
  const { run, masker } = args;
  const type = args.type ?? args.inputs.type;
  const fields = typeof type === 'string' && isRunnableJobType(type) ? FIELDS_OF.get(type) : undefined;
  const inputs = Object.fromEntries(
    Object.entries(args.inputs).filter(
      ([key, value]) => value !== null && value !== undefined && (!fields || fields.has(key)),
    ),
  );
  return {
    runId: run.id,
    jobId: run.jobId,
    attempt: run.attempt,
    definitionVersion: run.definitionVersion,
    trigger: run.trigger,
    inputs: masker.maskDeep(inputs) as Record<string, unknown>,
    output: masker.maskDeep(args.output ?? null),
    status: run.status,
    error:
      run.errorMessage === null && run.errorCode === null
        ? null
        : { message: masker.mask(run.errorMessage ?? ''), code: run.errorCode },
    startedAt: run.startTime?.toISOString() ?? null,
    endedAt: run.endTime?.toISOString() ?? null,
  };
}
