import { assertTenantName, createApiKey, CustosError, DEFAULT_TENANT, MAX_KEY_LIFETIME_SECONDS, parseScopes, revokeApiKey, viewApiKey } from '@custos/kernel';

import { type Io, parseOptions, requireOption } from '../io.js';
import { openInitialisedStore, readStoreLocation } from '../openInitialisedStore.js';

const HELP = `Usage:
  custos apikey create (--data-dir D | --store URL) --name N --scopes register,derive,sign [--tenant T]
                       [--expires-in SECONDS] [--wallet-prefix P]
  custos apikey create (--data-dir D | --store URL) --name N --scopes admin[,derive] --tenant system
  custos apikey list   (--data-dir D | --store URL) [--json]
  custos apikey revoke (--data-dir D | --store URL) --id ID

create prints the new key ONCE, as the last word of its output; only a hash is stored.
Scopes: register (enrol factors), derive (public keys, addresses), sign, admin (operator actions: POST /v1/sys/seal).
Tenant: the backend the key belongs to (default "default"): a wallet belongs to the tenant whose key
first named it, and a key of another tenant gets wallet_not_found for it. admin is an operator
scope: only keys of the operator tenant "system" may hold it.
--expires-in: the key stops working after this many seconds (60 to ten years; default never).
--wallet-prefix: the key reaches only its tenant's wallets whose names start with P, exactly
(case-sensitive, no Unicode folding); not on an admin key. Both are fixed at creation, MAC'd and
anchored in the audit log (docs/api-keys.md). list prints every name whole, last on its line.
Names are 1..128 characters without control characters.`;

export async function apikeyCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  const opts = parseOptions(rest, {
    'data-dir': { type: 'string' },
    store: { type: 'string' },
    name: { type: 'string' },
    scopes: { type: 'string' },
    id: { type: 'string' },
    tenant: { type: 'string' },
    json: { type: 'boolean' },
    'expires-in': { type: 'string' },
    'wallet-prefix': { type: 'string' },
  });
  if (opts.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const location = readStoreLocation(opts);
  switch (sub) {
    case 'create': {
      const name = requireOption(opts.name, 'name');
      const scopes = parseScopes(requireOption(opts.scopes, 'scopes'));
      const tenant = assertTenantName(opts.tenant ?? DEFAULT_TENANT, 'tenant');
      const expiresIn = opts['expires-in'];
      if (expiresIn !== undefined && (!/^[1-9][0-9]{0,9}$/.test(expiresIn) || Number(expiresIn) < 60 || Number(expiresIn) > MAX_KEY_LIFETIME_SECONDS))
        throw new CustosError('invalid_input', `--expires-in: seconds, from 60 to ${MAX_KEY_LIFETIME_SECONDS}`, { details: { field: 'expires-in' } });
      const store = await openInitialisedStore(location);
      try {
        const { id, token } = await createApiKey(store, {
          name,
          scopes,
          tenant,
          ...(expiresIn === undefined ? {} : { expiresAt: Date.now() + Number(expiresIn) * 1000 }),
          ...(opts['wallet-prefix'] === undefined ? {} : { walletPrefix: opts['wallet-prefix'] }),
        });
        io.stdout.write(`Created API key ${id} (${name}; tenant ${tenant}; scopes ${scopes.join(',')}). It is shown once:\n${token}\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    case 'list': {
      const store = await openInitialisedStore(location);
      try {
        const keys = await store.listApiKeys();
        if (opts.json === true) {
          // machine-readable: the public fields of each key (never the secret's hash or the row MAC)
          const rows = keys.map(viewApiKey);
          io.stdout.write(`${JSON.stringify({ apiKeys: rows })}\n`);
          return 0;
        }
        // The name last and whole (names hold no control characters: apikey create refuses them); the wallet prefix as JSON.
        const time = (ms: number | null | undefined) => (ms === null || ms === undefined ? '-'.padEnd(24) : new Date(ms).toISOString());
        io.stdout.write(
          `${'id'.padEnd(16)}  ${'tenant'.padEnd(16)} ${'scopes'.padEnd(23)} ${'created'.padEnd(24)}  ${'revoked'.padEnd(24)}  ${'expires'.padEnd(24)}  ${'last used'.padEnd(24)}  wallet prefix  name\n`,
        );
        for (const k of keys) {
          const prefix = k.walletPrefix === null || k.walletPrefix === undefined ? '-' : JSON.stringify(k.walletPrefix);
          io.stdout.write(
            `${k.id}  ${k.tenant.padEnd(16)} ${k.scopes.join(',').padEnd(23)} ${time(k.createdAt)}  ${time(k.revokedAt)}  ${time(k.expiresAt)}  ${time(k.lastUsedAt)}  ${prefix.padEnd(13)}  ${k.name}\n`,
          );
        }
      } finally {
        await store.close();
      }
      return 0;
    }
    case 'revoke': {
      const id = requireOption(opts.id, 'id');
      const store = await openInitialisedStore(location);
      try {
        await revokeApiKey(store, id);
        io.stdout.write(`Revoked API key ${id}\n`);
      } finally {
        await store.close();
      }
      return 0;
    }
    default:
      throw new CustosError('invalid_input', `unknown apikey subcommand ${JSON.stringify(sub)}; expected create, list or revoke`);
  }
}
