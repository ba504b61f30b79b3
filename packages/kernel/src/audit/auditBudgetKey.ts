import type { App } from '../kernel/types.js';

/** Whose audit budget a caller spends: its tenant's (all the tenant's API keys together). */
export function auditBudgetKey(app: App): string {
  return app.tenant;
}
