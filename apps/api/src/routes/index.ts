import type { ApiDeps } from '../deps.ts';
import type { ApiRouter } from '../http/route.ts';
import { registerAuditRoutes } from './audit.ts';
import { registerAuthRoutes } from './auth.ts';
import { registerDlqRoutes } from './dlq.ts';
import { registerJobRoutes } from './jobs.ts';
import { registerNotificationRoutes } from './notifications.ts';
import { registerRoleRoutes } from './roles.ts';
import { registerRunRoutes } from './runs.ts';
import { registerStatsRoutes } from './stats.ts';
import { registerUserRoutes } from './users.ts';
import { registerVariableRoutes } from './variables.ts';
import { registerWebhookRoutes } from './webhooks.ts';

/** Every area of the REST API, mounted under /api/v1 in this order. */
export const ROUTE_MODULES: readonly ((api: ApiRouter, deps: ApiDeps) => void)[] = [
  registerAuthRoutes,
  registerUserRoutes,
  registerRoleRoutes,
  registerJobRoutes,
  registerRunRoutes,
  registerDlqRoutes,
  registerVariableRoutes,
  registerWebhookRoutes,
  registerNotificationRoutes,
  registerAuditRoutes,
  registerStatsRoutes,
];
