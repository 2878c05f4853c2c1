import { describe, expect, it } from 'vitest';
import { instantsAtWallTime, isValidTimeZone, wallTimeAt, type WallTime } from '../../src/index.ts';
import { isoSeconds, localeWallClock } from './helpers.ts';

describe('isValidTimeZone', () => {
  it.each([
    ['Europe/Berlin', true],
    ['America/New_York', true],
    ['Australia/Lord_Howe', true],
    ['Asia/Kathmandu', true],
    ['UTC', true],
    ['Etc/GMT-14', true],
    ['Mars/Olympus_Mons', false],
    ['Europe/Berlin/Mitte', false],
    ['', false],
    ['   ', false],
  ])('%s → %s', (tz, valid) => {
    expect(isValidTimeZone(tz)).toBe(valid);
  });
});

const wall = (s: string): WallTime => {
  const [date = '', time = ''] = s.split(' ');
  const [year, month, day] = date.split('-').map(Number);
  const [hour, minute, second = 0] = time.split(':').map(Number);
  return { year: year!, month: month!, day: day!, hour: hour!, minute: minute!, second };
};

describe('a wall time maps to the instants that show it', () => {
  const rows: { behaviour: string; timezone: string; wall: string; instants: string[] }[] = [
    {
      behaviour: 'an ordinary summer time is one instant',
      timezone: 'Europe/Berlin',
      wall: '2026-07-01 12:00',
      instants: ['2026-07-01T10:00:00Z'],
    },
    {
      behaviour: 'a time in the spring gap is none',
      timezone: 'Europe/Berlin',
      wall: '2026-03-29 02:30',
      instants: [],
    },
    {
      behaviour: 'the first second after the gap is the transition',
      timezone: 'Europe/Berlin',
      wall: '2026-03-29 03:00',
      instants: ['2026-03-29T01:00:00Z'],
    },
    {
      behaviour: 'a time in the fall-back overlap is two, an hour apart',
      timezone: 'Europe/Berlin',
      wall: '2026-10-25 02:30',
      instants: ['2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z'],
    },
    { behaviour: 'New York gap', timezone: 'America/New_York', wall: '2026-03-08 02:59:59', instants: [] },
    {
      behaviour: 'New York overlap',
      timezone: 'America/New_York',
      wall: '2026-11-01 01:00',
      instants: ['2026-11-01T05:00:00Z', '2026-11-01T06:00:00Z'],
    },
    {
      behaviour: 'Lord Howe overlap is two, half an hour apart',
      timezone: 'Australia/Lord_Howe',
      wall: '2026-04-05 01:45',
      instants: ['2026-04-04T14:45:00Z', '2026-04-04T15:15:00Z'],
    },
    {
      behaviour: 'Lord Howe half-hour gap',
      timezone: 'Australia/Lord_Howe',
      wall: '2026-10-04 02:15',
      instants: [],
    },
    {
      behaviour: 'Lord Howe just after its gap',
      timezone: 'Australia/Lord_Howe',
      wall: '2026-10-04 02:30',
      instants: ['2026-10-03T15:30:00Z'],
    },
    {
      behaviour: 'Chatham (+12:45/+13:45) overlap',
      timezone: 'Pacific/Chatham',
      wall: '2026-04-05 03:00',
      instants: ['2026-04-04T13:15:00Z', '2026-04-04T14:15:00Z'],
    },
    { behaviour: 'Chatham gap', timezone: 'Pacific/Chatham', wall: '2026-09-27 03:00', instants: [] },
    {
      behaviour: 'Kathmandu (+05:45)',
      timezone: 'Asia/Kathmandu',
      wall: '2026-01-01 00:00',
      instants: ['2025-12-31T18:15:00Z'],
    },
    {
      behaviour: "St John's (-02:30 in summer)",
      timezone: 'America/St_Johns',
      wall: '2026-07-01 09:30',
      instants: ['2026-07-01T12:00:00Z'],
    },
    {
      behaviour: 'Samoa skipped 30 December 2011 entirely',
      timezone: 'Pacific/Apia',
      wall: '2011-12-30 12:00',
      instants: [],
    },
  ];
  it.each(rows)('$behaviour', ({ timezone, wall: w, instants }) => {
    const found = instantsAtWallTime(timezone, wall(w));
    expect(isoSeconds(found)).toEqual(instants);
    for (const instant of found)
      expect(localeWallClock(instant, timezone)).toBe(`${w.length === 16 ? `${w}:00` : w}`);
  });

  it('and back: wallTimeAt reads the clock at an instant', () => {
    expect(wallTimeAt('Australia/Lord_Howe', new Date('2026-04-04T15:15:00.900Z'))).toEqual(
      wall('2026-04-05 01:45'),
    );
    expect(wallTimeAt('America/New_York', new Date('2026-03-08T07:00:00Z'))).toEqual(
      wall('2026-03-08 03:00'),
    );
  });

  it('agree with toLocaleString on every hour of 2026 in a half-hour-DST zone', () => {
    const mismatches: string[] = [];
    for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 3_600_000) {
      const w = wallTimeAt('Australia/Lord_Howe', new Date(t));
      const s = `${w.year}-${String(w.month).padStart(2, '0')}-${String(w.day).padStart(2, '0')} ${[w.hour, w.minute, w.second].map((n) => String(n).padStart(2, '0')).join(':')}`;
      if (s !== localeWallClock(new Date(t), 'Australia/Lord_Howe'))
        mismatches.push(new Date(t).toISOString());
    }
    expect(mismatches).toEqual([]);
  });
});
