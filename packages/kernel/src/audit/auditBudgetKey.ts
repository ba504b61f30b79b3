import type { App } from '../kernel/Kernel.js';

/**
 * Whose audit budget a caller spends: its tenant's (API keys belong to a tenant; keys made before
 * tenants existed belong to `default`).
 */
export function auditBudgetKey(app: App): string {
  return (app as { tenant?: string }).tenant ?? 'default';
}
