// store-independent: opens no store (an HTTP receiver in this process); runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { DeliveryMessage } from '@custos/kernel';
import type { RenderedMessage } from './renderMessage.js';
import { createWebhookChannel } from './webhookChannel.js';

// Issue 13 (quorum wiring): the webhook's URL is the one in force at each send (the deployment
// settings' before the flag, Kernel.webhookUrlInForce); none in force fails for good, a lookup
// that fails is retried.

const SECRET = new TextEncoder().encode('webhook secret for tests 0123456789');
const MESSAGE = {} as DeliveryMessage;
const RENDERED: RenderedMessage = { subject: 's', text: 't', html: 'h', fields: { type: 'custos.oob.test', id: 'm1' } };

describe('webhook channel: the URL in force at each send', () => {
  const bodies: Array<{ path: string; body: string }> = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on('end', () => {
      bodies.push({ path: request.url ?? '', body });
      response.end('ok');
    });
  });
  let base = '';
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('follows the URL the lookup gives at each send; none in force is a permanent failure; a failed lookup is retried', async () => {
    let inForce: string | null = `${base}/first`;
    const channel = createWebhookChannel({ url: async () => inForce, secret: SECRET });
    assert.deepEqual(await channel.send(MESSAGE, RENDERED), { ok: true });
    inForce = `${base}/second`;
    assert.deepEqual(await channel.send(MESSAGE, RENDERED), { ok: true });
    assert.deepEqual(
      bodies.map((b) => b.path),
      ['/first', '/second'],
    );
    inForce = null;
    const none = await channel.send(MESSAGE, RENDERED);
    assert.deepEqual([none.ok, (none as { permanent?: boolean }).permanent], [false, true]);
    const failing = createWebhookChannel({
      url: async () => {
        throw Object.assign(new Error('sealed'), { code: 'sealed' });
      },
      secret: SECRET,
    });
    const failed = await failing.send(MESSAGE, RENDERED);
    assert.deepEqual([failed.ok, (failed as { permanent?: boolean }).permanent], [false, false]);
    assert.equal(bodies.length, 2);
  });
});
