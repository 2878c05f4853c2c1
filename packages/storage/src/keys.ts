// Object keys of Chronos documents. Ids are ULIDs; anything that could escape its folder ("/",
// "..", an empty id) is refused rather than written somewhere unexpected.

function segment(kind: string, id: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(id))
    throw new TypeError(`${kind} "${id}" may hold only letters, digits, "_" and "-"`);
  return id;
}

/** Every object of a job: `jobs/<id>/` (what `remove` deletes when the job is deleted). */
export function jobPrefix(jobId: string): string {
  return `jobs/${segment('job id', jobId)}/`;
}

/** The definition versions of a job: `jobs/<id>/definitions/`. */
export function jobDefinitionsPrefix(jobId: string): string {
  return `${jobPrefix(jobId)}definitions/`;
}

/** Version `version` (1, 2, …) of a job's full definition: `jobs/<id>/definitions/v<N>.json`. */
export function jobDefinitionKey(jobId: string, version: number): string {
  if (!Number.isSafeInteger(version) || version < 1)
    throw new TypeError(`definition version must be a whole number from 1 (got ${version})`);
  return `${jobDefinitionsPrefix(jobId)}v${version}.json`;
}

/**
 * The version of a key made by `jobDefinitionKey`, or undefined for any other key. `list` sorts
 * keys as text (`v10` before `v2`); sort by this number instead.
 */
export function definitionVersionOf(key: string): number | undefined {
  const m = /^jobs\/[A-Za-z0-9_-]+\/definitions\/v([1-9]\d*)\.json$/.exec(key);
  return m ? Number(m[1]) : undefined;
}

/** Every object of a run: `runs/<id>/`. */
export function runPrefix(runId: string): string {
  return `runs/${segment('run id', runId)}/`;
}

/** A run's execution context (resolved inputs with secrets masked, outputs): `runs/<id>/context.json`. */
export function runContextKey(runId: string): string {
  return `${runPrefix(runId)}context.json`;
}
