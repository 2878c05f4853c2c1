export type { WallTime } from './civil-time.ts';
export {
  CRON_MAX_YEAR,
  CRON_MIN_YEAR,
  CronExpression,
  type CronFields,
  type NthWeekday,
} from './cron-expression.ts';
export { parseCron } from './cron-parser.ts';
export { CronSyntaxError, describeCronError, type CronFieldName } from './cron-syntax-error.ts';
export { instantsAtWallTime, isValidTimeZone, wallTimeAt } from './time-zone.ts';
export {
  DST_GAP_POLICIES,
  DST_REPEAT_POLICIES,
  INTERVAL_MODES,
  fireTimesBetween,
  nextFireTimes,
  validateSchedule,
  type CronSchedule,
  type DstGapPolicy,
  type DstRepeatPolicy,
  type IntervalMode,
  type IntervalSchedule,
  type OnceSchedule,
  type ScheduleSpec,
} from './schedule-spec.ts';
