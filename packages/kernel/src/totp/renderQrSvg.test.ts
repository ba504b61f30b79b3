import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildOtpauthUri } from './buildOtpauthUri.js';
import { renderQrSvg } from './renderQrSvg.js';

describe('renderQrSvg', () => {
  it('renders an SVG document with a path', async () => {
    const uri = buildOtpauthUri({ issuer: 'Custos', accountName: 'treasury', secret: new Uint8Array(20).fill(1) });
    const svg = await renderQrSvg(uri);
    assert.ok(svg.startsWith('<svg') || svg.startsWith('<?xml'), svg.slice(0, 40));
    assert.ok(svg.includes('<path'));
    assert.ok(svg.trimEnd().endsWith('</svg>'));
  });

  it('draws different codes for different texts', async () => {
    assert.notEqual(await renderQrSvg('otpauth://totp/A:a?secret=A'), await renderQrSvg('otpauth://totp/A:b?secret=A'));
  });

  it('refuses an empty text', async () => {
    await assert.rejects(renderQrSvg(''), { code: 'invalid_input', details: { field: 'text' } });
  });
});
