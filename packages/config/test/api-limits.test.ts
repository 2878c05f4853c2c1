import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.ts';

function issueOf(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected loadConfig to fail');
}

describe('TRUST_PROXY', () => {
  it('trusts no proxy by default', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
  });

  it.each([
    ['', false],
    ['none', false],
    ['FALSE', false],
    ['0', false],
    ['1', 1],
    ['2', 2],
    ['loopback', ['loopback']],
    ['10.0.0.0/8, 192.0.2.7 ,loopback', ['10.0.0.0/8', '192.0.2.7', 'loopback']],
    ['::1, fd00::/8, uniquelocal, linklocal', ['::1', 'fd00::/8', 'uniquelocal', 'linklocal']],
  ])('reads %j as %j', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  it('refuses "true": any client could choose its own address', () => {
    expect(issueOf({ TRUST_PROXY: 'true' })).toMatch(/^TRUST_PROXY must not be "true"/);
  });

  it.each([
    ['proxy.example', /"proxy\.example" is not an IP address/],
    ['10.0.0.0/33', /"10\.0\.0\.0\/33" needs a prefix length of 0–32/],
    ['fd00::/129', /prefix length of 0–128/],
    ['10.0.0.0/255.0.0.0', /prefix length/],
    ['101', /at most 100 hops/],
  ])('names the variable and the bad item in one line for %j', (value, pattern) => {
    const message = issueOf({ TRUST_PROXY: value });
    expect(message).toMatch(/^TRUST_PROXY /);
    expect(message).toMatch(pattern);
    expect(message.split('\n')).toHaveLength(1);
  });
});

describe('API_MAX_IN_FLIGHT', () => {
  it('is 256 by default and may be set', () => {
    expect(loadConfig({}).maxInFlight).toBe(256);
    expect(loadConfig({ API_MAX_IN_FLIGHT: '2' }).maxInFlight).toBe(2);
  });

  it('refuses 0 and non-numbers', () => {
    expect(issueOf({ API_MAX_IN_FLIGHT: '0' })).toMatch(/^API_MAX_IN_FLIGHT must be between 1 and 100000/);
    expect(issueOf({ API_MAX_IN_FLIGHT: 'lots' })).toMatch(/^API_MAX_IN_FLIGHT must be a whole number/);
  });
});
