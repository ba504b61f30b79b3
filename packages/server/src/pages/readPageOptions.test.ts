// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { testArtifactsDir } from '../testing/createTestSigner.js';
import { readPageOptions } from './readPageOptions.js';

describe('the pages’ options from the command line', () => {
  it('nothing given: nothing set (the defaults of the page routes apply)', () => {
    assert.deepEqual(readPageOptions({}), {});
  });

  it('a token list file, a brand and a language', () => {
    const file = join(mkdtempSync(join(testArtifactsDir(), 'page-options-')), 'tokens.json');
    writeFileSync(file, JSON.stringify([{ chainId: 1, address: `0x${'a'.repeat(40)}`, symbol: 'TKN', decimals: 18 }]));
    const options = readPageOptions({ tokenListFile: file, brandName: 'Acme Custody', lang: 'de-CH' });
    assert.equal(options.tokenList?.find(1, `0x${'A'.repeat(40)}`)?.symbol, 'TKN');
    assert.equal(options.brandName, 'Acme Custody');
    assert.equal(options.lang, 'de-CH');
  });

  it('refuses a brand that is empty, too long or hides characters, and a malformed language tag, naming the option', () => {
    for (const brandName of ['', '   ', 'x'.repeat(65), 'Acme\u202Eevil', 'Acme\nCustody', 'A\u0000'])
      assert.throws(() => readPageOptions({ brandName }), { code: 'invalid_input', message: /^--page-brand: / });
    for (const lang of ['', 'e', 'english', 'en_US', 'en-', '"><x', 'en-CH-x-verylongsubtag'])
      assert.throws(() => readPageOptions({ lang }), { code: 'invalid_input', message: /^--page-lang: / });
    assert.throws(() => readPageOptions({ tokenListFile: join(testArtifactsDir(), 'no-such-token-list.json') }), {
      code: 'invalid_input',
      message: /^--token-list: /,
    });
  });
});
