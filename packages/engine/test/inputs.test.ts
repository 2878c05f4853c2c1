import { TemplateError, ValidationError, createSecretBox } from '@chronos/core';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveRunInputs, setVariable, type PayloadFields } from '../src/index.ts';
import { createJob, harness, type Harness } from './fixtures.ts';

let h: Harness;
const box = createSecretBox({ current: { id: 'k1', key: randomBytes(32) } });
beforeAll(async () => {
  h = await harness('engine-inputs');
});
afterEach(async () => {
  await h.db.variable.deleteMany();
  await h.db.job.deleteMany();
});
afterAll(async () => {
  await h?.close();
});

async function payloadOf(jobId: string): Promise<PayloadFields> {
  const { id: _id, jobId: _j, ...fields } = await h.db.jobPayload.findUniqueOrThrow({ where: { jobId } });
  return fields;
}
const run = {
  id: 'RUN1',
  scheduledTime: new Date('2026-05-01T10:00:00Z'),
  attempt: 2,
  idempotencyKey: 'JOB-1',
};

describe('variables', () => {
  it('a sensitive value is stored as ciphertext bound to its row; a plain one as is', async () => {
    const secret = await setVariable(h.db, box, {
      ownerId: h.ownerId,
      name: 'API_KEY',
      value: 'sk-live-123456',
      sensitive: true,
    });
    const plain = await setVariable(h.db, box, { ownerId: h.ownerId, name: 'REGION', value: 'eu-west-1' });
    const s = await h.db.variable.findUniqueOrThrow({ where: { id: secret.id } });
    expect(s.value).not.toContain('sk-live');
    expect(s.value).toMatch(/^v1:k1:/);
    expect(s.keyId).toBe('k1');
    expect(box.decrypt(s.value, s.id)).toBe('sk-live-123456');
    expect(() => box.decrypt(s.value, plain.id)).toThrow();
    expect((await h.db.variable.findUniqueOrThrow({ where: { id: plain.id } })).value).toBe('eu-west-1');
  });

  it('refuses a sensitive value without an encryption key, or too short to mask', async () => {
    await expect(
      setVariable(h.db, undefined, { ownerId: h.ownerId, name: 'X', value: 'abcdef', sensitive: true }),
    ).rejects.toThrow(ValidationError);
    await expect(
      setVariable(h.db, box, { ownerId: h.ownerId, name: 'X', value: 'abc', sensitive: true }),
    ).rejects.toThrow(/at least 4 characters/);
    expect(await h.db.variable.count()).toBe(0);
  });
});

describe('resolving a run’s payload', () => {
  it('fills every string field in one literal pass; the job’s variable beats the global one; secrets are masked', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.jobPayload.update({
      where: { jobId },
      data: {
        httpUrl: 'https://{{var.HOST}}/items?run={{run.id}}',
        httpHeaders: { authorization: 'Bearer {{var.TOKEN}}', 'x-attempt': '{{run.attempt}}' },
        httpBody: '{"job":"{{job.name}}","at":"{{run.scheduledTime}}","raw":"{{var.RAW}}"}',
      },
    });
    await setVariable(h.db, box, { ownerId: h.ownerId, name: 'HOST', value: 'global.example' });
    await setVariable(h.db, box, { ownerId: h.ownerId, name: 'HOST', value: 'job.example', jobId });
    await setVariable(h.db, box, {
      ownerId: h.ownerId,
      name: 'TOKEN',
      value: 'tok-9876543',
      sensitive: true,
    });
    await setVariable(h.db, box, { ownerId: h.ownerId, name: 'RAW', value: '{{var.TOKEN}} ${HOME}' });
    const job = await h.db.job.findUniqueOrThrow({ where: { id: jobId } });
    const out = await resolveRunInputs(h.db, box, {
      job: { id: jobId, name: job.name, ownerId: h.ownerId },
      run,
      payload: await payloadOf(jobId),
    });
    expect(out.payload.httpUrl).toBe('https://job.example/items?run=RUN1');
    expect(out.payload.httpHeaders).toEqual({ authorization: 'Bearer tok-9876543', 'x-attempt': '2' });
    expect(JSON.parse(out.payload.httpBody!)).toEqual({
      job: job.name,
      at: '2026-05-01T10:00:00.000Z',
      raw: '{{var.TOKEN}} ${HOME}',
    });
    expect(out.masker.mask('sent Bearer tok-9876543')).toBe('sent Bearer ***');
  });

  it('an unknown variable fails with its name', async () => {
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.jobPayload.update({ where: { jobId }, data: { httpUrl: 'https://{{var.NOPE}}/' } });
    const err = await resolveRunInputs(h.db, box, {
      job: { id: jobId, name: 'j', ownerId: h.ownerId },
      run,
      payload: await payloadOf(jobId),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TemplateError);
    expect((err as Error).message).toContain('unknown variable "var.NOPE"');
  });

  it('another owner’s global variable is not visible', async () => {
    const other = 'OTHEROWNER0000000000000000';
    await h.db.user.create({ data: { id: other, email: 'other@example.test', passwordHash: 'x' } });
    await setVariable(h.db, box, { ownerId: other, name: 'HOST', value: 'theirs.example' });
    const jobId = await createJob(h, { intervalSeconds: 60 });
    await h.db.jobPayload.update({ where: { jobId }, data: { httpUrl: 'https://{{var.HOST}}/' } });
    await expect(
      resolveRunInputs(h.db, box, {
        job: { id: jobId, name: 'j', ownerId: h.ownerId },
        run,
        payload: await payloadOf(jobId),
      }),
    ).rejects.toThrow(/unknown variable "var.HOST"/);
    await h.db.user.delete({ where: { id: other } });
  });
});
