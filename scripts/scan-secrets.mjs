#!/usr/bin/env node
// Scans a test-artifacts directory for leaked secrets.
// Usage: node scripts/scan-secrets.mjs [artifacts-dir]   (default: $CUSTOS_TEST_ARTIFACTS)
//
// Tests record every secret they see as one JSON line {label, value} in <artifacts>/secrets.jsonl
// (recordTestSecret in packages/server/src/testing/createTestSigner.ts). This reads them and
// looks for each value in the raw bytes of every other file under the directory: logs, data
// directories, SQLite databases with their -wal and -shm files. Values shorter than 6 characters
// are skipped. A TOTP code (6 to 10 digits) can occur by chance in binary data and inside longer
// numbers, so codes are looked for only in text files (no NUL byte: the logs, not the databases)
// and only as a whole token: no letter, digit or '.' before it, no letter or digit after it (a code's
// digits also turn up by chance inside hex identifiers — an approval id, a hash — which is no leak;
// a code written out stands between quotes, '=', ':', spaces or other punctuation).
// Prints `secret scan: <n> secrets, <m> files, <k> leaks`, then one line per leak naming the
// secret's label and the file, never the value. Exit status: 0 clean, 1 leaks, 2 unusable input.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SECRETS_FILE = 'secrets.jsonl';
const MIN_LENGTH = 6;
const CODE = /^[0-9]{6,10}$/;

/** The recorded secrets, one entry per distinct value: { value, labels, code }. */
export function readRecordedSecrets(dir) {
  let text;
  try {
    text = readFileSync(join(dir, SECRETS_FILE), 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  const byValue = new Map();
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      throw new Error(`${SECRETS_FILE} line ${index + 1} is not JSON`);
    }
    if (typeof entry?.label !== 'string' || typeof entry?.value !== 'string') throw new Error(`${SECRETS_FILE} line ${index + 1} is not {label, value}`);
    if (entry.value.length < MIN_LENGTH) return;
    const known = byValue.get(entry.value);
    if (known === undefined) byValue.set(entry.value, { value: entry.value, labels: [entry.label], code: CODE.test(entry.value) });
    else if (!known.labels.includes(entry.label)) known.labels.push(entry.label);
  });
  return [...byValue.values()];
}

/** Every regular file under dir except the top-level secrets.jsonl (symbolic links are not followed). */
export function listArtifactFiles(dir) {
  const out = [];
  const walk = (current) => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name);
      const stat = lstatSync(path);
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile() && !(current === dir && name === SECRETS_FILE)) out.push(path);
    }
  };
  walk(dir);
  return out;
}

function isText(bytes) {
  return !bytes.includes(0);
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Scans dir; returns { secrets, files, leaks: [{ label, file }] } (file relative to dir). */
export function scanSecrets(dir) {
  const root = resolve(dir);
  if (!lstatSync(root).isDirectory()) throw new Error(`${root} is not a directory`);
  const secrets = readRecordedSecrets(root).map((s) => ({
    ...s,
    bytes: Buffer.from(s.value, 'utf8'),
    pattern: s.code ? new RegExp(`(?<![0-9A-Za-z.])${escapeRegExp(s.value)}(?![0-9A-Za-z])`) : undefined,
  }));
  const files = listArtifactFiles(root);
  const leaks = [];
  for (const file of files) {
    const bytes = readFileSync(file);
    const text = isText(bytes);
    const latin1 = text ? bytes.toString('latin1') : '';
    for (const secret of secrets) {
      const found = secret.code ? text && secret.pattern.test(latin1) : bytes.includes(secret.bytes);
      if (found) leaks.push({ label: secret.labels.join(', '), file: relative(root, file) });
    }
  }
  return { secrets: secrets.length, files: files.length, leaks };
}

/** Prints the summary line and the leaks; returns the exit status. */
export function reportScan(dir, log = console.log) {
  let result;
  try {
    result = scanSecrets(dir);
  } catch (error) {
    log(`secret scan: cannot scan ${dir}: ${error.message}`);
    return 2;
  }
  log(`secret scan: ${result.secrets} secrets, ${result.files} files, ${result.leaks.length} leaks`);
  for (const leak of result.leaks) log(`  leak: ${leak.label} in ${leak.file}`);
  return result.leaks.length === 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2] ?? process.env.CUSTOS_TEST_ARTIFACTS;
  if (dir === undefined || dir === '') {
    console.error('usage: node scripts/scan-secrets.mjs <artifacts-dir> (or set CUSTOS_TEST_ARTIFACTS)');
    process.exit(2);
  }
  process.exit(reportScan(dir));
}
