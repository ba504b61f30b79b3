import { CustosError, type FactorRecord, type FactorRows } from '@custos/kernel';

/**
 * A factor's rows IN MEMORY, for tests of the factor seam only (not transactional, unlike a store's
 * table — the real factors' rows are the store's). `rows` is exposed so that a test can tamper with them.
 */
/** `stored` picks the fields the rows keep (FactorRows.stored). */
export function inMemoryFactorRowsForTests<S extends object>(stored: (state: S) => S): FactorRows<S> & { rows: Map<string, FactorRecord<S>> } {
  const rows = new Map<string, FactorRecord<S>>();
  return {
    rows,
    stored,
    async read(_tx, walletName) {
      const row = rows.get(walletName);
      return row === undefined ? [] : [structuredClone(row)];
    },
    fromWalletRows(_rows, walletName) {
      const row = rows.get(walletName);
      return row === undefined ? [] : [structuredClone(row)];
    },
    async insert(_tx, record) {
      if (rows.has(record.walletName)) throw new CustosError('already_enrolled', 'enrolled');
      rows.set(record.walletName, structuredClone(record));
    },
    async saveState(_tx, record, state, mac) {
      rows.set(record.walletName, { ...structuredClone(record), state: structuredClone(state), mac });
    },
  };
}
