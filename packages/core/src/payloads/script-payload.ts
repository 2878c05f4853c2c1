import { z } from 'zod';

/** The interpreters a SCRIPT job may name; a worker refuses the run when its binary is not installed. */
export const SCRIPT_INTERPRETERS = ['bash', 'sh', 'node', 'python3'] as const;
export type ScriptInterpreter = (typeof SCRIPT_INTERPRETERS)[number];

/** A POSIX-portable environment variable name. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Variables a job may not set. The loader and libc ones act inside the launcher (prlimit, setpriv,
 * nice) before the limits are in place; the interpreter ones make bash, sh or node run code from
 * elsewhere before the script's first line. `CHRONOS_*` are set by the worker.
 */
function refusedEnvName(name: string): string | null {
  const upper = name.toUpperCase();
  if (upper.startsWith('LD_') || upper === 'GLIBC_TUNABLES' || upper === 'GCONV_PATH') {
    return 'is refused: it changes how the dynamic loader starts every program';
  }
  if (upper === 'NODE_OPTIONS' || upper === 'BASH_ENV' || upper === 'ENV') {
    return 'is refused: it makes the interpreter run other code first; put that in the script';
  }
  if (upper.startsWith('CHRONOS_')) return 'is refused: CHRONOS_* variables are set by the worker';
  return null;
}

/**
 * Resource limits of a script's processes (setrlimit, applied per process: they bound each process
 * of the script, not the script's processes together).
 */
export const scriptLimitsSchema = z.strictObject({
  /** CPU time per process (RLIMIT_CPU): SIGXCPU at the limit, SIGKILL shortly after. */
  cpuSeconds: z.int().min(1).max(86_400).optional(),
  /**
   * Private writable memory per process (RLIMIT_DATA); allocations beyond it fail. Node needs about
   * 128 MB to start.
   */
  memoryMb: z.int().min(64).max(65_536).optional(),
  /**
   * Processes and threads of the run-as user (RLIMIT_NPROC), counted over all its processes. Not
   * enforced for root. Node needs about 16 (its threads count).
   */
  maxProcesses: z.int().min(8).max(4096).optional(),
  /** Largest file a process may write (RLIMIT_FSIZE): SIGXFSZ beyond it. */
  maxFileSizeMb: z.int().min(1).max(10_240).optional(),
  /** stdout + stderr bytes before the run is stopped with OUTPUT_LIMIT. */
  maxOutputBytes: z
    .int()
    .min(1024)
    .max(100 * 1024 * 1024)
    .optional(),
});
export type ScriptLimits = z.infer<typeof scriptLimitsSchema>;

export const scriptMetadataSchema = z.strictObject({
  limits: scriptLimitsSchema.nullish(),
});
export type ScriptMetadata = z.infer<typeof scriptMetadataSchema>;

export const scriptEnvSchema = z
  .record(
    z.string(),
    z
      .string()
      .max(32_768, 'must be at most 32 KiB')
      .regex(/^[^\0]*$/, 'must not contain NUL'),
  )
  .superRefine((env, ctx) => {
    const names = Object.keys(env);
    if (names.length > 200) ctx.addIssue({ code: 'custom', message: 'must hold at most 200 variables' });
    for (const name of names) {
      const refused = ENV_NAME.test(name)
        ? refusedEnvName(name)
        : 'is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)';
      if (refused) ctx.addIssue({ code: 'custom', path: [name], message: refused });
    }
  });

/**
 * A SCRIPT job's payload: the `script*` columns of job_payloads plus `timeoutSeconds` and
 * `metadata` (`{ limits }`). Optional columns accept `null` (as stored) as well as absence.
 */
export const scriptPayloadSchema = z.object({
  scriptContent: z
    .string({ error: (issue) => (issue.input == null ? 'is required' : 'must be a string') })
    .max(1024 * 1024, 'must be at most 1 MiB')
    .refine((s) => s.trim() !== '', 'is required'),
  /** @defaultValue 'bash' */
  scriptInterpreter: z
    .enum(SCRIPT_INTERPRETERS, { error: `must be one of ${SCRIPT_INTERPRETERS.join(', ')}` })
    .nullish()
    .transform((v): ScriptInterpreter => v ?? 'bash'),
  /** The script's variables on top of the worker's minimal set (PATH, HOME, LANG, CHRONOS_*). */
  scriptEnv: scriptEnvSchema.nullish(),
  timeoutSeconds: z.int().min(1).max(86_400).nullish(),
  metadata: scriptMetadataSchema.nullish(),
});
export type ScriptPayload = z.infer<typeof scriptPayloadSchema>;
export type ScriptPayloadInput = z.input<typeof scriptPayloadSchema>;
