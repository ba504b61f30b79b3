import { CustosError } from '@custos/kernel';

/** At most this many key indexes per run (each wallet is derived at every one of them). */
export const MAX_KEY_INDEXES = 10_000;
const INDEX = '(0|[1-9][0-9]{0,9})';
const ITEM = new RegExp(`^${INDEX}(?:-${INDEX})?$`);

function refuse(reason: string): CustosError {
  return new CustosError('invalid_input', `--key-indexes: ${reason}`, { details: { field: 'key-indexes' } });
}

/**
 * Parses a key-index list: comma-separated items, each an index (`7`) or an inclusive range
 * (`0-9`), every index a canonical decimal 0 ≤ k < 2^31. Returns the distinct indexes in ascending
 * order; more than MAX_KEY_INDEXES, an empty item, a descending range or a malformed number is
 * invalid_input naming the item.
 */
export function parseKeyIndexes(text: string): number[] {
  const indexes = new Set<number>();
  for (const [position, item] of text.split(',').entries()) {
    const m = ITEM.exec(item);
    if (m === null) {
      throw refuse(`item ${position + 1} ${JSON.stringify(item.slice(0, 40))}: expected an index (7) or a range (0-9) of decimal integers 0 ≤ k < 2^31`);
    }
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from >= 2 ** 31 || to >= 2 ** 31) throw refuse(`item ${position + 1} ${JSON.stringify(item)}: an index must be below 2^31`);
    if (to < from) throw refuse(`item ${position + 1} ${JSON.stringify(item)}: the range runs backwards`);
    if (to - from + 1 > MAX_KEY_INDEXES) throw refuse(`more than ${MAX_KEY_INDEXES} indexes`);
    for (let k = from; k <= to; k++) indexes.add(k);
    if (indexes.size > MAX_KEY_INDEXES) throw refuse(`more than ${MAX_KEY_INDEXES} indexes`);
  }
  return [...indexes].sort((a, b) => a - b);
}
