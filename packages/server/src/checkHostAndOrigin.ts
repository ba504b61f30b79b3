import { CustosError } from '@custos/kernel';
import type { FastifyRequest } from 'fastify';

/**
 * The operator routes (`/v1/sys/…`: status, unseal, unseal reset, seal) answer only requests
 * addressed to this signer by a name it knows, and never a browser page of another origin. Without
 * this, a web page could post to a signer on localhost: through DNS rebinding (the page's own host
 * name resolved to 127.0.0.1, so the browser sends `Host: evil.example`) or as a plain cross-site
 * POST (the browser sends `Origin: https://evil.example`).
 *
 * Accepted `Host`: the address:port the connection arrived on (the listener's own address),
 * `localhost` (any port: an SSH tunnel), or the public URL's host. `Origin`, when present, must be
 * the public URL's origin; without a public URL every `Origin` is refused (the CLI sends none).
 */
export function assertHostAndOrigin(request: FastifyRequest, publicUrl: URL | undefined): void {
  assertHost(request, publicUrl);
  const origin = request.headers.origin;
  if (origin !== undefined && (publicUrl === undefined || origin.toLowerCase() !== publicUrl.origin))
    throw new CustosError(
      'forbidden_origin',
      publicUrl === undefined ? 'Origin: no web origin may call the operator routes (no --public-url)' : 'Origin: not the origin of --public-url',
      { details: { field: 'origin' } },
    );
}

/**
 * The Host half of assertHostAndOrigin, alone: what the public listener (--public-listen) asks of
 * every request. Its pages' forms post with `Origin: null` (no-referrer), so their origin is
 * checked by the pages' own form check instead (pages/pageRoutes.ts).
 */
export function assertHost(request: FastifyRequest, publicUrl: URL | undefined): void {
  const host = parseHost(request.headers.host);
  if (host === undefined || !hostAllowed(host, request, publicUrl))
    throw new CustosError('forbidden_host', 'Host: not an address of this signer (its listening address, localhost, or --public-url)', {
      details: { field: 'host' },
    });
}

/**
 * Checks a public URL given by an operator: http(s), a host, no path beyond '/', no query, fragment
 * or credentials. Returns it parsed.
 */
export function parsePublicUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidPublicUrl('expected an http(s) URL such as https://custos.example.com');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidPublicUrl('expected an http: or https: URL');
  if (url.hostname === '') throw invalidPublicUrl('expected a host');
  if (url.username !== '' || url.password !== '') throw invalidPublicUrl('expected no user name or password');
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || /[?#]/.test(text))
    throw invalidPublicUrl("expected no path beyond '/', no query and no fragment");
  return url;
}

function invalidPublicUrl(what: string): CustosError {
  return new CustosError('invalid_input', `--public-url: ${what}`, { details: { field: 'public-url' } });
}

interface Host {
  /** Lower case; an IPv6 address without its brackets. */
  name: string;
  /** undefined when the header names none (the scheme's default). */
  port: number | undefined;
}

/** `name[:port]` or `[v6]:port`, as RFC 9110 §7.2 has it; anything else is no host. */
function parseHost(header: string | undefined): Host | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::([0-9]{1,5}))?$/.exec(header);
  if (m === null) return undefined;
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && port > 65535) return undefined;
  return { name: (m[1] ?? m[2] ?? '').toLowerCase(), port };
}

function hostAllowed(host: Host, request: FastifyRequest, publicUrl: URL | undefined): boolean {
  if (host.name === 'localhost') return true;
  const socket = request.raw.socket;
  const local = socket.localAddress?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '').toLowerCase();
  const defaultPort = 'encrypted' in socket && socket.encrypted === true ? 443 : 80;
  if (local !== undefined && host.name === local && (host.port ?? defaultPort) === socket.localPort) return true;
  if (publicUrl !== undefined) {
    const publicName = publicUrl.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    const publicPort = publicUrl.port === '' ? undefined : Number(publicUrl.port);
    const effective = (port: number | undefined) => port ?? (publicUrl.protocol === 'https:' ? 443 : 80);
    if (host.name === publicName && effective(host.port) === effective(publicPort)) return true;
  }
  return false;
}
