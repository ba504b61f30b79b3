import type { Store } from '../store/types.js';
import type { AuditCheckpoint } from './auditCheckpoint.js';

/** Pages through the stored audit checkpoints in seq order. */
export async function* readAuditCheckpointPages(store: Pick<Store, 'readAuditCheckpoints'>, pageSize = 1000): AsyncIterable<AuditCheckpoint[]> {
  let from = 1;
  for (;;) {
    const page = await store.readAuditCheckpoints(from, pageSize);
    if (page.length === 0) return;
    yield page;
    const last = page[page.length - 1];
    if (last === undefined || page.length < pageSize) return;
    from = last.seq + 1;
  }
}
