import type { CronExpression } from './cron-expression.ts';
import { MAX_OFFSET_SECONDS, type ZoneRules } from './time-zone.ts';

/** What to do with a matching wall time that a spring-forward skips. */
export type DstGapPolicy = 'SKIP' | 'SHIFT';
/** Which instant(s) fire for a matching wall time that a fall-back repeats. */
export type DstRepeatPolicy = 'FIRST' | 'LAST' | 'BOTH';

/** Far more than any real search needs (a handful of segments); only a guard against a logic error. */
const MAX_STEPS = 100_000;

/**
 * The first fire instant (epoch seconds) strictly after `afterSeconds`, or null when there is none up
 * to the expression's last year.
 *
 * Walks the timeline one constant-offset segment at a time, so fires come out in instant order even
 * where wall time runs backwards; inside a segment wall time = instant + offset and the cron search
 * jumps field by field. The fire set does not depend on `after`, so repeated calls never fire a
 * nominal wall time twice (unless BOTH):
 * - gap: wall times in [T + offsetBefore, T + offset) do not exist; SHIFT fires once at T if any matches.
 * - overlap after a fall-back at T: wall times in [T + offset, T + offsetBefore) occurred before T too;
 *   FIRST skips their second occurrence, LAST their first.
 */
export function nextCronFire(
  cron: CronExpression,
  zone: ZoneRules,
  afterSeconds: number,
  gap: DstGapPolicy,
  repeat: DstRepeatPolicy,
): number | null {
  let cursor = Math.floor(afterSeconds) + 1;
  for (let step = 0; step < MAX_STEPS; step++) {
    const seg = zone.segmentAt(cursor);
    const { offset } = seg;
    if (cursor === seg.start && seg.offsetBefore < offset && gap === 'SHIFT') {
      if (cron.nextMatch(seg.start + seg.offsetBefore, seg.start + offset) >= 0) return seg.start;
    }
    const wall = cron.nextMatch(cursor + offset, seg.end + offset);
    if (wall >= 0) {
      const repeatsEarlier = seg.offsetBefore > offset && wall < seg.start + seg.offsetBefore;
      if (repeatsEarlier && repeat === 'FIRST') {
        cursor = seg.start + seg.offsetBefore - offset; // first instant past the overlap
        continue;
      }
      const repeatsLater = seg.offsetAfter < offset && wall >= seg.end + seg.offsetAfter;
      if (repeatsLater && repeat === 'LAST') {
        cursor = seg.end;
        continue;
      }
      return wall - offset;
    }
    // Nothing in this segment: jump towards the next matching wall time, found without the zone.
    // Any instant t >= seg.end has a wall time >= seg.end - MAX_OFFSET and lies at or after its
    // wall time - MAX_OFFSET, so the jump cannot pass a fire (nor a gap whose wall times match).
    const nextWall = cron.nextMatch(seg.end - MAX_OFFSET_SECONDS);
    if (nextWall < 0) return null;
    cursor = Math.max(seg.end, nextWall - MAX_OFFSET_SECONDS);
  }
  return null;
}
