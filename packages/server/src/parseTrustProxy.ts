import { parseAddressList } from './parseAllowFrom.js';

/**
 * `--trust-proxy A,B/N,…`: the addresses or CIDR ranges of the reverse proxies in front of the
 * server. Requests whose socket comes from one of them are attributed to the address the proxy
 * wrote in X-Forwarded-For (the right-most address that is not itself a trusted proxy, Fastify's
 * trustProxy semantics); every other request to its socket's address, whatever headers it sends.
 * There is no "trust everything": a caller could then pick the address its back-off is kept under.
 */
export function parseTrustProxy(text: string): string[] {
  return parseAddressList(text, 'trust-proxy', 'proxy addresses or CIDR ranges');
}
