/** Whose audit budget a caller spends: its tenant's (all the tenant's API keys together). */
export function auditBudgetKey(app: { tenant: string }): string {
  return app.tenant;
}
