import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The scripts the kernel's pages load: @simplewebauthn/browser's UMD bundle (global
 * `SimpleWebAuthnBrowser`) and the pages' own passkey script (packages/server/assets/passkey.js,
 * shipped beside dist/ through package.json `files`). Both are served by the kernel itself, never a
 * third-party origin, under a name carrying their content hash (so they can be cached for good), and
 * each page loads them with its response's CSP nonce. Read once, when the page routes are built.
 */
export interface PageAsset {
  /** `/assets/<name>-<hash>.js`. */
  path: string;
  body: Buffer;
}

export interface PageAssets {
  /** @simplewebauthn/browser's UMD bundle. */
  webauthn: PageAsset;
  /** assets/passkey.js: the passkey steps of the approval and enrolment pages. */
  passkey: PageAsset;
}

/** `/assets/<name>-<first 16 hex digits of SHA-256>.js`. */
function assetOf(name: string, body: Buffer): PageAsset {
  return { path: `/assets/${name}-${createHash('sha256').update(body).digest('hex').slice(0, 16)}.js`, body };
}

/**
 * The directory of the installed @simplewebauthn/browser. Its exports map names only its ESM and
 * CommonJS entry points (not dist/bundle), so the package is resolved as Node resolves a require
 * and its root found by walking up to the package.json that names it. `require.resolve`, not
 * `import.meta.resolve`: the latter is behind a flag before Node 20.6, and the engines allow 20.3.
 */
export function simpleWebAuthnBrowserDir(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser'));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (
      statSync(manifest, { throwIfNoEntry: false })?.isFile() &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === '@simplewebauthn/browser'
    )
      return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('@simplewebauthn/browser: no package.json above its entry point');
    dir = parent;
  }
}

/** Reads both scripts (throws at start-up when either is missing: the pages would be broken). */
export function readPageAssets(): PageAssets {
  const webauthn = readFileSync(join(simpleWebAuthnBrowserDir(), 'dist', 'bundle', 'index.umd.min.js'));
  // dist/pages/pageAssets.js → packages/server/assets/
  const passkey = readFileSync(fileURLToPath(new URL('../../assets/passkey.js', import.meta.url)));
  return { webauthn: assetOf('webauthn', webauthn), passkey: assetOf('passkey', passkey) };
}

/**
 * The headers of an asset: JavaScript, never sniffed as anything else, cacheable for a year (its
 * name changes with its content), readable by this origin only.
 */
export const ASSET_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/javascript; charset=utf-8',
  'x-content-type-options': 'nosniff',
  'cache-control': 'public, max-age=31536000, immutable',
  'cross-origin-resource-policy': 'same-origin',
};
