// store-independent: refused before any store is opened; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serveCommand } from './commands/serve.js';

// The options of issue 15 point 13 (--ops-listen, --allow-from, --tls-client-ca, --housekeeping-*)
// are checked before the store is opened: a bad value stops the start with invalid_input naming it.

const io = { stdout: { write: () => true }, stderr: { write: () => true } };
const refused = (args: string[], field: string) =>
  assert.rejects(serveCommand(['--data-dir', '/nonexistent/custos-never-opened', ...args], io), { code: 'invalid_input', details: { field } }, args.join(' '));

describe('custos serve: listener and housekeeping options', () => {
  it('refuses bad values before opening the store', async () => {
    await refused(['--ops-listen', 'nonsense'], 'ops-listen');
    // plain HTTP on a wildcard or public address needs --insecure-http
    await refused(['--ops-listen', '0.0.0.0:9090'], 'ops-listen');
    await refused(['--ops-listen', '203.0.113.5:9090'], 'ops-listen');
    await refused(['--allow-from', '10.0.0.0/33'], 'allow-from');
    await refused(['--allow-from', 'everyone'], 'allow-from');
    await refused(['--tls-client-ca', '/etc/ca.pem'], 'tls-client-ca');
    await refused(['--housekeeping-interval', '0'], 'housekeeping-interval');
    await refused(['--housekeeping-interval', '86401'], 'housekeeping-interval');
    await refused(['--housekeeping-retention-days', '0'], 'housekeeping-retention-days');
  });
});
