import type { Store } from '../store/types.js';
import type { AuditRecord } from './types.js';

/** Pages through the whole audit log in seq order. */
export async function* readAuditPages(store: Pick<Store, 'readAudit'>, pageSize = 1000): AsyncIterable<AuditRecord[]> {
  let from = 1;
  for (;;) {
    const page = await store.readAudit(from, pageSize);
    if (page.length === 0) return;
    yield page;
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) return;
    from = last.seq + 1;
  }
}
