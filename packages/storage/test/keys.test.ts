import { describe, expect, it } from 'vitest';
import {
  definitionVersionOf,
  jobDefinitionKey,
  jobDefinitionsPrefix,
  jobPrefix,
  runContextKey,
  runPrefix,
} from '../src/index.ts';

const JOB = '01JB8ZQ3M5V7K9N1P3R5T7W9XA';

describe('keys', () => {
  it('name job definition versions and run contexts as the issue says', () => {
    expect(jobDefinitionKey(JOB, 1)).toBe(`jobs/${JOB}/definitions/v1.json`);
    expect(jobDefinitionKey(JOB, 12)).toBe(`jobs/${JOB}/definitions/v12.json`);
    expect(runContextKey('run-1')).toBe('runs/run-1/context.json');
    expect(jobPrefix(JOB)).toBe(`jobs/${JOB}/`);
    expect(jobDefinitionsPrefix(JOB)).toBe(`jobs/${JOB}/definitions/`);
    expect(runPrefix('run-1')).toBe('runs/run-1/');
  });

  it('refuse ids that could leave their folder and versions below 1', () => {
    for (const id of ['', 'a/b', '..', 'a b', 'x\n'])
      expect(() => jobDefinitionKey(id, 1), JSON.stringify(id)).toThrow(/job id/);
    expect(() => runContextKey('../x')).toThrow(/run id/);
    for (const v of [0, -1, 1.5, Number.NaN]) expect(() => jobDefinitionKey(JOB, v)).toThrow(/version/);
  });

  it('read the version back from a definition key, nothing from other keys', () => {
    expect(definitionVersionOf(jobDefinitionKey(JOB, 10))).toBe(10);
    expect(definitionVersionOf(runContextKey('r'))).toBeUndefined();
    expect(definitionVersionOf(`jobs/${JOB}/definitions/v01.json`)).toBeUndefined();
    const keys = [10, 2, 1].map((v) => jobDefinitionKey(JOB, v)).sort();
    expect(keys.map(definitionVersionOf)).toEqual([1, 10, 2]);
    expect(keys.map(definitionVersionOf).sort((a = 0, b = 0) => a - b)).toEqual([1, 2, 10]);
  });
});
