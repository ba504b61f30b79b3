// store-independent: opens no store; runs in the SQLite pass only (scripts/test.mjs)
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CustosError, ERROR_CODES, type ErrorCode } from '@custos/kernel';
import { errorBody, errorDocsUrl } from './errorHandler.js';

/** docs/errors.md must explain every code of ERROR_CODES, with its status, under the anchor CustosError.docsPath links to. */

// dist/errorsDoc.test.js -> packages/server -> repo root
const REPO_ROOT = new URL('../../../', import.meta.url);
const DOC_PATH = fileURLToPath(new URL('docs/errors.md', REPO_ROOT));
const doc = readFileSync(DOC_PATH, 'utf8');
const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

interface Section {
  heading: string;
  body: string;
}

/** The level-2 sections of the page, in order. */
function sections(): Section[] {
  const out: Section[] = [];
  let current: Section | undefined;
  let inFence = false;
  for (const line of doc.split('\n')) {
    if (line.startsWith('```')) inFence = !inFence;
    const m = inFence ? null : /^## (.+?)\s*$/.exec(line);
    if (m?.[1] !== undefined) {
      current = { heading: m[1], body: '' };
      out.push(current);
    } else if (current !== undefined) {
      current.body += `${line}\n`;
    }
  }
  return out;
}

/** GitHub's heading anchor: lower case, punctuation other than '-' and '_' dropped, spaces to '-'. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Code sections are those whose heading is a code's anchor form (`invalid-input`); the rest is prose. */
const CODE_HEADING = /^[a-z]+(-[a-z]+)*$/;

function codeSections(): Map<string, Section> {
  const map = new Map<string, Section>();
  for (const s of sections()) {
    if (!CODE_HEADING.test(s.heading)) continue;
    assert.ok(!map.has(s.heading), `section ${s.heading} appears once`);
    map.set(s.heading, s);
  }
  return map;
}

function anchorOf(code: ErrorCode): string {
  const docsPath = new CustosError(code, 'x').docsPath;
  const [file, anchor] = docsPath.split('#');
  assert.equal(file, 'docs/errors.md');
  assert.ok(anchor !== undefined && anchor.length > 0);
  return anchor;
}

describe('docs/errors.md', () => {
  test('is the file CustosError.docsPath links to', () => {
    for (const code of CODES) {
      const file = new CustosError(code, 'x').docsPath.split('#')[0] ?? '';
      assert.ok(existsSync(fileURLToPath(new URL(file, REPO_ROOT))), `${file} exists`);
    }
  });

  test('has one section per code, under the anchor of CustosError.docsPath', () => {
    const byHeading = codeSections();
    for (const code of CODES) {
      const anchor = anchorOf(code);
      const section = byHeading.get(anchor);
      assert.ok(section !== undefined, `a "## ${anchor}" section for ${code}`);
      assert.equal(githubAnchor(section.heading), anchor, `the heading of ${code} renders to #${anchor}`);
    }
    assert.equal(byHeading.size, CODES.length);
  });

  test('no section names a code that does not exist', () => {
    const anchors = new Set(CODES.map(anchorOf));
    for (const heading of codeSections().keys()) assert.ok(anchors.has(heading), `## ${heading} is not a code of ERROR_CODES`);
    // every snake_case identifier in backticks is a real code (catches renamed or invented codes in prose)
    for (const m of doc.matchAll(/`([a-z]+(?:_[a-z]+)+)`/g)) {
      const name = m[1] ?? '';
      assert.ok(Object.hasOwn(ERROR_CODES, name), `\`${name}\` is not a code of ERROR_CODES`);
    }
  });

  test('each section opens with its code and its HTTP status from ERROR_CODES', () => {
    const byHeading = codeSections();
    for (const code of CODES) {
      const section = byHeading.get(anchorOf(code));
      assert.ok(section !== undefined, code);
      const first = section.body.split('\n').find((line) => line.trim() !== '') ?? '';
      const m = /^`([a-z_]+)` — \*\*HTTP (\d{3})\*\*$/.exec(first);
      assert.ok(m !== null, `${code}: first line is "\`${code}\` — **HTTP <status>**", got ${JSON.stringify(first)}`);
      assert.equal(m[1], code);
      assert.equal(Number(m[2]), ERROR_CODES[code].status, `${code}: status`);
      // no other status is claimed in the section
      for (const other of section.body.matchAll(/\*\*HTTP (\d{3})\*\*/g)) assert.equal(Number(other[1]), ERROR_CODES[code].status, `${code}: status`);
    }
  });

  test('each section says when it happens, whether to retry, and what to do', () => {
    for (const code of CODES) {
      const section = codeSections().get(anchorOf(code));
      assert.ok(section !== undefined, code);
      for (const label of ['**When:**', '**Retry:**', '**What to do:**']) {
        const at = section.body.indexOf(label);
        assert.ok(at >= 0, `${code}: ${label}`);
        const rest = section.body.slice(at + label.length).split('\n\n')[0] ?? '';
        assert.ok(rest.trim().length >= 3, `${code}: ${label} has text`);
      }
      const retry = /\*\*Retry:\*\* (yes|no|not)\b/i.exec(section.body);
      assert.ok(retry !== null, `${code}: Retry answers yes or no`);
    }
  });

  test('the intro shows the error body, details.field and Retry-After', () => {
    const intro = doc.slice(0, doc.indexOf(`## ${anchorOf(CODES[0] ?? 'internal')}`));
    const example = /```json\n([\s\S]*?)\n```/.exec(intro)?.[1];
    assert.ok(example !== undefined, 'a JSON example of the error body');
    const body = JSON.parse(example) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body), ['error']);
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'details', 'docs', 'message']);
    assert.equal(body.error.docs, errorDocsUrl(new CustosError(body.error.code as ErrorCode, 'x')), 'the example links its code');
    assert.ok(Object.hasOwn(ERROR_CODES, String(body.error.code)), 'the example uses a real code');
    assert.ok(intro.includes('details.field'));
    assert.ok(intro.includes('Retry-After'));
    const throttled = codeSections().get(anchorOf('factor_throttled'));
    assert.ok(throttled?.body.includes('Retry-After'), 'factor_throttled explains Retry-After');
    assert.ok(throttled?.body.includes('retryAfterSeconds'));
  });

  test("every error body's docs URL names the anchor of its code's section", () => {
    const byHeading = codeSections();
    for (const code of CODES) {
      const { docs } = errorBody(new CustosError(code, 'x')).error;
      const m = /^\/docs\/errors#([a-z-]+)$/.exec(docs);
      assert.ok(m?.[1] !== undefined, `${code}: ${docs}`);
      assert.equal(m[1], anchorOf(code), code);
      assert.ok(byHeading.has(m[1]), `${code}: docs/errors.md has #${m[1]}`);
    }
  });
});
