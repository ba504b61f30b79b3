import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CustosError, ERROR_CODES, type ErrorCode } from '@custos/kernel';
import { errorBody } from './errorHandler.js';
import { chromiumForTests, launchChromium } from './testing/chromium.js';
import { createTestSigner, type TestSigner, testStoreKind } from './testing/createTestSigner.js';

// /docs (issue 15 point 7): the OpenAPI document as a browsable page, Swagger UI's files served from
// node_modules under a CSP of this origin only; in a real Chromium it lists the operations with no
// request leaving the signer.

const browser = chromiumForTests();
// the page does not depend on the store: the browser runs in the SQLite pass only (CI time)
const browserSkip = testStoreKind() === 'postgres' ? 'the browser check runs in the SQLite pass' : browser.skip;

describe('/docs: the API reference page', () => {
  let signer: TestSigner;
  let base: string;

  before(async () => {
    signer = await createTestSigner();
    base = (await signer.app.listen({ host: '127.0.0.1', port: 0 })).replace('127.0.0.1', 'localhost');
  });
  after(async () => {
    await signer.close();
  });

  it('serves the page, its scripts and the document from this origin, under a strict CSP', async () => {
    const page = await signer.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    // every script and style of the page is a relative path: nothing from a CDN
    for (const m of page.body.matchAll(/(?:src|href)="([^"]+)"/g)) assert.doesNotMatch(String(m[1]), /^(https?:)?\/\//, String(m[1]));
    for (const file of ['swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'swagger-ui.css', 'swagger-initializer.js']) {
      const asset = await signer.app.inject({ method: 'GET', url: `/docs/static/${file}` });
      assert.equal(asset.statusCode, 200, file);
    }
    const initializer = (await signer.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })).body;
    assert.match(initializer, /validatorUrl: null/, 'no badge fetched from the validator service');
    const json = await signer.app.inject({ method: 'GET', url: '/docs/json' });
    assert.deepEqual(json.json().paths, (await signer.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json().paths);
  });

  it('/docs/errors has an anchor for every code, the one each error body links to', async () => {
    const page = await signer.app.inject({ method: 'GET', url: '/docs/errors' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-security-policy']), /^default-src 'none';/);
    const anchors = new Set([...page.body.matchAll(/<section id="([a-z-]+)">/g)].map((m) => m[1]));
    assert.equal(anchors.size, Object.keys(ERROR_CODES).length);
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const docs = errorBody(new CustosError(code, 'x')).error.docs;
      assert.ok(anchors.has(docs.split('#')[1]), `${code}: ${docs}`);
    }
    // a real error body carries it (and the docs pages' CSP stays theirs: none on the API's answers)
    const denied = await signer.app.inject({ method: 'GET', url: '/v1/keys?walletName=w&keyIndex=0' });
    assert.equal(denied.statusCode, 401);
    assert.equal(denied.json().error.docs, '/docs/errors#unauthorized');
    assert.equal(denied.headers['content-security-policy'], undefined);
  });

  it('renders the operations in Chromium without any request leaving the signer', { skip: browserSkip }, async () => {
    assert.ok(browser.executablePath !== undefined);
    const chromium = await launchChromium(browser.executablePath);
    try {
      const page = await chromium.newPage();
      const foreign: string[] = [];
      await page.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (url.origin === new URL(base).origin) return route.continue();
        foreign.push(url.href);
        return route.abort();
      });
      const violations: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
      });
      await page.goto(`${base}/docs/`);
      await page.waitForSelector('.opblock', { timeout: 20_000 });
      const operations = await page.locator('.opblock').count();
      assert.ok(operations > 20, `operations listed: ${operations}`);
      assert.ok((await page.locator('.opblock-summary-path[data-path="/v1/sys/status"]').count()) > 0, 'GET /v1/sys/status listed');
      assert.deepEqual(foreign, []);
      assert.deepEqual(violations, []);
    } finally {
      await chromium.close();
    }
  });
});
