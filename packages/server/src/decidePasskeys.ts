import { isIP } from 'node:net';
import { CustosError, type PasskeySettings } from '@custos/kernel';

/**
 * What the server does about passkeys, decided once at start from the public URL (the address the
 * owner's browser shows the pages under) and the rpIDs the store's passkeys were registered for:
 * - `on`: the kernel gets these settings (rpID: exactly the URL's host; origin: exactly its origin);
 *   `warning` when browsers will refuse them anyway (plain http on a host other than localhost).
 * - `off`: no passkey factor; `message` says why (one start-up line).
 * - `refused`: the start is refused (`error`): the store holds passkeys this public URL would
 *   orphan, since a browser binds each passkey to the host it was registered on.
 */
export type PasskeyDecision =
  | { kind: 'on'; settings: PasskeySettings; warning?: string }
  | { kind: 'off'; message: string }
  | { kind: 'refused'; error: CustosError };

/**
 * Decides the passkey settings (pure). `publicUrl` is the parsed `--public-url`, or its default
 * `http://localhost:<port of the pages' listener>`; undefined when that default cannot be known
 * before the port is bound (port 0 without --public-url).
 */
export function decidePasskeys(publicUrl: URL | undefined, storedRpIds: readonly string[], rpName: string): PasskeyDecision {
  const stored = [...new Set(storedRpIds)].sort();
  if (publicUrl === undefined) {
    const why = 'the pages listen on a port chosen at start (port 0) and no --public-url names it';
    if (stored.length > 0) return { kind: 'refused', error: rpIdChanged(`${why}, but the store holds passkeys for ${list(stored)}`, stored) };
    return { kind: 'off', message: `passkeys are off: ${why}, so their origin is unknown; give --public-url` };
  }
  const host = publicUrl.hostname.replace(/^\[(.*)\]$/, '$1');
  // WebAuthn has no relying party on an IP address: browsers refuse the ceremony (SecurityError).
  if (isIP(host) !== 0) {
    if (stored.length > 0)
      return {
        kind: 'refused',
        error: rpIdChanged(
          `--public-url ${publicUrl.origin} is an IP address, but the store holds passkeys registered for ${list(stored)}: under it they would stop working (browsers bind a passkey to its host and refuse passkeys on IP addresses); serve the pages under ${list(stored)} again`,
          stored,
        ),
      };
    return {
      kind: 'off',
      message: `passkeys are off: the public URL ${publicUrl.origin} is an IP address, and browsers refuse passkeys (WebAuthn) on IP addresses; use a host name such as localhost (--public-url http://localhost:PORT)`,
    };
  }
  const foreign = stored.filter((rpId) => rpId !== host);
  if (foreign.length > 0)
    return {
      kind: 'refused',
      error: rpIdChanged(
        `the store holds passkeys registered for ${list(foreign)}, but --public-url ${publicUrl.origin} has the host ${host}: those passkeys would stop working (browsers bind a passkey to the host it was registered on); serve the pages under ${list(foreign)} again`,
        stored,
      ),
    };
  const settings: PasskeySettings = { rpId: host, origin: publicUrl.origin, rpName };
  // Browsers offer WebAuthn only in a secure context: https, or http on localhost.
  if (publicUrl.protocol === 'http:' && !isLocalhost(host))
    return {
      kind: 'on',
      settings,
      warning: `passkeys need https: browsers allow them only in a secure context, and the public URL ${publicUrl.origin} is plain http on a host other than localhost`,
    };
  return { kind: 'on', settings };
}

/** `localhost` and its subdomains: the names browsers treat as a secure context over plain http. */
function isLocalhost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost');
}

function list(rpIds: readonly string[]): string {
  return rpIds.join(', ');
}

function rpIdChanged(message: string, stored: readonly string[]): CustosError {
  return new CustosError('passkey_rp_id_changed', `refusing to start: ${message}`, { details: { field: 'public-url', storedRpIds: [...stored] } });
}
