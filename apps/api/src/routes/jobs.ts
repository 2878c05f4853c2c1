import type { ApiDeps } from '../deps.ts';
import type { ApiRouter } from '../http/route.ts';
import { registerJobActionRoutes } from '../jobs/action-routes.ts';
import { registerJobCrudRoutes } from '../jobs/crud-routes.ts';
import { registerJobScheduleRoutes } from '../jobs/schedule-routes.ts';
import { registerJobVersionRoutes } from '../jobs/version-routes.ts';

/**
 * `/jobs…` and `/schedules/preview`: definitions (CRUD, versions in object storage), operations
 * (pause, resume, trigger, backfill), schedule previews and the ledger. See apps/api/src/jobs/.
 */
export function registerJobRoutes(api: ApiRouter, deps: ApiDeps): void {
  registerJobCrudRoutes(api, deps);
  registerJobActionRoutes(api, deps);
  registerJobScheduleRoutes(api, deps);
  registerJobVersionRoutes(api, deps);
}
