import type { ApiDeps } from '../deps.ts';
import type { ApiRouter } from '../http/route.ts';

/** Routes of this area; see issue 6. */
export function registerUserRoutes(_api: ApiRouter, _deps: ApiDeps): void {}
