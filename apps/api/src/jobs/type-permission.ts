// Job types whose payload is code (SCRIPT) need a permission of their own to be defined or changed.
import { DEFINITION_PERMISSIONS, type JobTypeName } from '@chronos/core';
import type { Principal } from '../auth/principal.ts';
import { forbidden } from '../http/errors.ts';

/**
 * 403 unless the caller may define jobs of each of `types` (job:write is checked by the route).
 * Every path that creates or changes a job calls it — POST, PUT and PATCH /jobs today, an import or
 * a multi-step definition tomorrow — with the stored type and any type the body names.
 */
export function assertMayDefine(principal: Principal, ...types: (JobTypeName | undefined)[]): void {
  for (const type of types) {
    const needed = type && DEFINITION_PERMISSIONS[type];
    if (needed && !principal.permissions.has(needed)) {
      throw forbidden(
        `Your roles do not grant ${needed}, which defining or changing ${type} jobs needs (their payload is code that runs on the workers)`,
      );
    }
  }
}
