import type { ApiDeps } from '../deps.ts';
import type { ApiRouter } from '../http/route.ts';

/** Routes of this area; see issue 6. */
export function registerStatsRoutes(_api: ApiRouter, _deps: ApiDeps): void {}
