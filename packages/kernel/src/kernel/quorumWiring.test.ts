// store-independent: a pure function (the webhook URL's precedence); no store involved.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { webhookUrlInForce } from './quorumWiring.js';

const FLAG = 'https://flag.example.com/hook';
const ROW = 'https://settings.example.com/hook';

describe('webhookUrlInForce: the deployment settings row before the flag', () => {
  it('without an admin set: the row’s URL when it names one, else the flag', () => {
    assert.equal(webhookUrlInForce({ version: 0, webhookUrl: null }, false, FLAG), FLAG);
    assert.equal(webhookUrlInForce({ version: 0, webhookUrl: null }, false, undefined), null);
    assert.equal(webhookUrlInForce({ version: 2, webhookUrl: ROW }, false, FLAG), ROW);
    assert.equal(webhookUrlInForce({ version: 2, webhookUrl: null }, false, FLAG), FLAG);
  });
  it('with an admin set: the row rules once written (null: no webhook, the flag never adds one); before any row, the flag', () => {
    assert.equal(webhookUrlInForce({ version: 1, webhookUrl: ROW }, true, FLAG), ROW);
    assert.equal(webhookUrlInForce({ version: 1, webhookUrl: null }, true, FLAG), null);
    assert.equal(webhookUrlInForce({ version: 0, webhookUrl: null }, true, FLAG), FLAG);
  });
});
