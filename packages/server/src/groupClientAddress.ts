import { isIPv4, isIPv6 } from 'node:net';

/**
 * The unseal back-off's key for a client address: an IPv4 address as it is; an IPv6 address by its
 * /64 network (`2001:db8:1:2::/64`), since one subscriber gets a whole /64 (often far more) and
 * could otherwise take a fresh key per request; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`,
 * what a dual-stack listener reports for an IPv4 client) as the IPv4 address. Anything that is not
 * an address (no address at all) falls into one shared key, `unknown`.
 */
export function groupClientAddress(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  if (isIPv4(address)) return address;
  const bare = address.replace(/%.*$/, ''); // a zone index (fe80::1%eth0) names an interface, not a host
  if (!isIPv6(bare)) return 'unknown';
  const hextets = expandIpv6(bare);
  if (hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff) {
    const [hi = 0, lo = 0] = hextets.slice(6);
    return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
  }
  return `${hextets
    .slice(0, 4)
    .map((h) => h.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted IPv4 as two groups). */
function expandIpv6(address: string): number[] {
  const groupsOf = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [Number.parseInt(group, 16)];
      const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const [head = '', tail] = address.split('::');
  const left = groupsOf(head);
  if (tail === undefined) return left;
  const right = groupsOf(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}
