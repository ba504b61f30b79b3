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
//
// Each secret is also looked for encoded: hex (lower and upper case), base64, base64url and base32 of
// its bytes — the bytes of its text, or, for a value that is itself hex or base32 (a TOTP secret
// recorded as shown), the bytes it stands for, raw and in the other encodings. A secret encoded
// inside a longer string only matches when it starts on a byte boundary of that string.
//
// Databases are scanned as rows too: before the scan, every SQLite database under the directory is
// copied out (with its -wal) and dumped as text, every table's rows one per line (BLOBs in hex), into
// <database>.dump.txt beside it; the PostgreSQL schemas the tests created were dumped the same way
// by the test harness when it dropped them (pg-dumps/*.dump.txt, dumpTestSchema in
// packages/server/src/testing/createTestSigner.ts). A dump is text, so one-time codes are looked for
// in it as whole tokens, which the raw database files (binary) cannot give.
//
// One pass over each file finds every form of every secret (an index of their first bytes), rather
// than a search per secret: 180 MB of logs against 350 secrets take 12 s instead of 120 s.
//
// Files that hold a secret on purpose are not scanned: those named in EXPECTED_SECRET_FILES (the
// development kernel's passphrase and API key, which `npm start` keeps in its data directory and a
// test runs under the artifacts directory). Nothing else is written to them.
//
// Prints `secret scan: <n> secrets, <m> files (<d> database dumps), <k> leaks`, then one line per
// leak naming the secret's label and the file, never the value. Exit status: 0 clean, 1 leaks, 2
// unusable input.
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SECRETS_FILE = 'secrets.jsonl';
/** File names whose content is a secret by design (scripts/dev-start.mjs): expected, not leaks. */
export const EXPECTED_SECRET_FILES = new Set(['dev-api-key', 'dev-passphrase']);
/** Where the tests' HTTP responses are recorded, one JSON line each (scripts/record-responses.mjs). */
const RESPONSES_DIR = 'responses';
const MIN_LENGTH = 6;
const CODE = /^[0-9]{6,10}$/;
/** Decoded or encoded forms shorter than this many bytes are not looked for (chance matches). */
const MIN_DECODED = 8;
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');
export const DUMP_SUFFIX = '.dump.txt';
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes) {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return bits > 0 ? out + BASE32[(value << (5 - bits)) & 31] : out;
}

function fromBase32(text) {
  const clean = text.replace(/=+$/, '').toUpperCase();
  const out = [];
  let bits = 0;
  let value = 0;
  for (const char of clean) {
    value = (value << 5) | BASE32.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  return Buffer.from(out);
}

/**
 * The byte strings a secret is looked for as: its text; the bytes a hex or base32 value stands for;
 * and hex, base64, base64url and base32 of those bytes. Encodings are cut to whole groups (3 bytes
 * for base64, 5 for base32) so that they also match inside a longer encoded string.
 */
export function secretForms(value) {
  const text = Buffer.from(value, 'utf8');
  const sources = [text];
  if (value.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(value)) sources.push(Buffer.from(value, 'hex'));
  else if (/^[A-Z2-7]+=*$/.test(value) || /^[a-z2-7]+=*$/.test(value)) sources.push(fromBase32(value));
  const forms = new Map();
  const add = (form) => {
    if (form.length >= MIN_DECODED) forms.set(form.toString('latin1'), form);
  };
  for (const [i, bytes] of sources.entries()) {
    if (i > 0) add(bytes);
    const b64 = bytes.subarray(0, bytes.length - (bytes.length % 3));
    const b32 = bytes.subarray(0, bytes.length - (bytes.length % 5));
    add(Buffer.from(bytes.toString('hex'), 'latin1'));
    add(Buffer.from(bytes.toString('hex').toUpperCase(), 'latin1'));
    add(Buffer.from(b64.toString('base64'), 'latin1'));
    add(Buffer.from(b64.toString('base64url'), 'latin1'));
    add(Buffer.from(base32(b32), 'latin1'));
  }
  forms.delete(text.toString('latin1'));
  return [text, ...forms.values()];
}

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

/** True when the file starts with SQLite's header, or is empty beside a -wal (all its pages still in the WAL). */
function isSqliteDatabase(path) {
  try {
    const bytes = readFileSync(path);
    if (bytes.length === 0) return existsSync(`${path}-wal`);
    return bytes.subarray(0, SQLITE_HEADER.length).equals(SQLITE_HEADER);
  } catch {
    return false;
  }
}

/** One cell of a dump: text as it is (NUL written \\0), numbers as numbers, BLOBs in hex, NULL as NULL. */
export function dumpCell(cell) {
  if (cell === null || cell === undefined) return 'NULL';
  if (Buffer.isBuffer(cell) || cell instanceof Uint8Array) return `x'${Buffer.from(cell).toString('hex')}'`;
  return String(cell).replaceAll('\0', '\\0');
}

/**
 * Dumps every SQLite database under dir (a file starting with SQLite's header, not a -wal or -shm)
 * into <database>.dump.txt: a copy with its -wal is opened outside dir (opening the database there
 * would checkpoint its WAL away before the raw scan), and every table's rows are written one per line,
 * cells separated by tabs. Returns the dump files written.
 */
export function dumpSqliteDatabases(dir) {
  const Database = createRequire(join(fileURLToPath(import.meta.url), '..', '..', 'packages', 'server', 'package.json'))('better-sqlite3');
  const dumps = [];
  for (const file of listArtifactFiles(dir)) {
    if (file.endsWith('-wal') || file.endsWith('-shm') || file.endsWith(DUMP_SUFFIX) || !isSqliteDatabase(file)) continue;
    const scratch = mkdtempSync(join(tmpdir(), 'custos-dump-'));
    try {
      const copy = join(scratch, 'db');
      copyFileSync(file, copy);
      if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, `${copy}-wal`);
      const db = new Database(copy);
      try {
        const lines = [];
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all();
        for (const { name } of tables) {
          lines.push(`-- table ${name}`);
          for (const row of db
            .prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`)
            .raw()
            .iterate())
            lines.push(row.map(dumpCell).join('\t'));
        }
        writeFileSync(`${file}${DUMP_SUFFIX}`, `${lines.join('\n')}\n`);
        dumps.push(`${file}${DUMP_SUFFIX}`);
      } finally {
        db.close();
      }
    } catch (error) {
      // A database a test left half-written or corrupt on purpose: say so, scan its raw bytes only.
      writeFileSync(`${file}${DUMP_SUFFIX}`, `-- not dumped: ${error instanceof Error ? error.message : String(error)}\n`);
      dumps.push(`${file}${DUMP_SUFFIX}`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return dumps;
}

/** Every regular file under dir except the top-level secrets.jsonl and the EXPECTED_SECRET_FILES (symbolic links are not followed). */
export function listArtifactFiles(dir) {
  const out = [];
  const walk = (current) => {
    for (const name of readdirSync(current).sort()) {
      const path = join(current, name);
      const stat = lstatSync(path);
      if (stat.isDirectory()) walk(path);
      else if (stat.isFile() && !(current === dir && name === SECRETS_FILE) && !EXPECTED_SECRET_FILES.has(name)) out.push(path);
    }
  };
  walk(dir);
  return out;
}

function isText(bytes) {
  return !bytes.includes(0);
}

/**
 * Scans dir (after dumping its SQLite databases, unless dumps is false); returns
 * { secrets, files, dumps, leaks: [{ label, file, form }] } (file relative to dir; form `text` or the
 * encoding that matched).
 */
export function scanSecrets(dir, { dumps = true } = {}) {
  const root = resolve(dir);
  if (!lstatSync(root).isDirectory()) throw new Error(`${root} is not a directory`);
  if (dumps) dumpSqliteDatabases(root);
  const secrets = readRecordedSecrets(root);
  const index = buildIndex(secrets);
  const files = listArtifactFiles(root);
  const leaks = [];
  let responses = 0;
  let handedOut = 0;
  for (const file of files) {
    const bytes = readFileSync(file);
    const name = relative(root, file);
    if (name.startsWith(`${RESPONSES_DIR}/`) && name.endsWith('.jsonl')) {
      const result = scanResponses(bytes, name, secrets, index);
      responses += result.responses;
      handedOut += result.handedOut;
      leaks.push(...result.leaks);
      continue;
    }
    const found = findSecrets(bytes, isText(bytes), index);
    for (const [secret, form] of found) leaks.push({ label: secrets[secret].labels.join(', '), file: name, form });
  }
  return { secrets: secrets.length, files: files.length, dumps: files.filter((f) => f.endsWith(DUMP_SUFFIX)).length, responses, handedOut, leaks };
}

/**
 * One file of recorded HTTP responses (one JSON line each: { via, method, path, status, body }, see
 * scripts/record-responses.mjs): every body is scanned as text (codes as whole tokens); a secret found
 * in a body counts as handed out, not leaked, only when a HANDED_OUT entry names that response and that
 * kind of secret. A line that is not such a record (a process killed while writing it) is scanned
 * whole, as text.
 */
function scanResponses(bytes, file, secrets, index) {
  const leaks = [];
  let responses = 0;
  let handedOut = 0;
  for (const line of bytes.toString('utf8').split('\n')) {
    if (line === '') continue;
    let record;
    try {
      record = JSON.parse(line);
    } catch {
      record = undefined;
    }
    if (typeof record?.body !== 'string' || typeof record.path !== 'string' || typeof record.method !== 'string') {
      for (const [secret, form] of findSecrets(Buffer.from(line, 'utf8'), true, index)) leaks.push({ label: secrets[secret].labels.join(', '), file, form });
      continue;
    }
    responses += 1;
    // Prometheus text: each line's sample value (after its last space) is a number of the process (a
    // heap size of 971104 bytes once equalled a TOTP code of the run); names, labels and help are scanned
    const body = record.path === '/metrics' ? record.body.replace(/ [^ \n]*$/gm, '') : record.body;
    const found = findSecrets(Buffer.from(body, 'utf8'), true, index);
    for (const [secret, form] of found) {
      if (handedOutBy(record, secrets[secret]) !== undefined) {
        handedOut += 1;
        continue;
      }
      leaks.push({ label: secrets[secret].labels.join(', '), file: `${file}: ${record.method} ${shownPath(record.path)} → ${record.status}`, form });
    }
  }
  return { responses, handedOut, leaks };
}

/** A response's path for a leak line: the segments that look like capabilities or tokens cut short (a leak report never prints a secret). */
function shownPath(path) {
  return path.replace(/[A-Za-z0-9_-]{20,}/g, (token) => `${token.slice(0, 4)}…`);
}

/** The HANDED_OUT entry that lets this response carry this secret, or undefined. */
export function handedOutBy(record, secret) {
  return HANDED_OUT.find(
    (entry) =>
      (entry.method === undefined || entry.method === record.method) &&
      entry.path.test(record.path) &&
      (entry.status === undefined || entry.status(record.status)) &&
      secret.labels.some((label) => entry.secret.test(label)),
  );
}

/**
 * Every HTTP response that carries a secret by design, with the reason: the only place a
 * secret may appear in a response body the tests received. An entry names the route (method, path
 * pattern, status) and the kinds of secret it hands out (a pattern over the labels the tests record
 * them under, recordTestSecret); any other secret in that response, or that kind of secret in any
 * other response, is a leak.
 */
export const HANDED_OUT = [
  {
    method: 'PUT',
    path: /^\/v1\/wallets\/policy$/,
    status: (status) => status === 202,
    secret: /change ?(capability|path|url)/i,
    why: "a loosening policy PUT is timelocked (docs/timelock.md): the answer carries the change's page link for the owner, as POST /v1/changes does",
  },
  {
    method: 'POST',
    path: /^\/v1\/admin\/passkey-links$/,
    status: (status) => status === 200 || status === 201,
    secret: /admin ?enrol(l)?ment ?capability|passkey ?link/i,
    why: 'an admin passkey enrolment link (docs/quorum.md): the answer is the link the operator hands to the new admin, once',
  },
  {
    method: 'POST',
    path: /^\/v1\/apikeys$/,
    status: (status) => status === 200 || status === 201,
    secret: /^api ?key$/i,
    why: 'a new API key over the API (docs/api-keys.md): the answer carries its token once, to the operator who made it; only its hash is stored, and no later answer shows it (GET /v1/apikeys lists no secret)',
  },
  {
    method: 'POST',
    path: /^\/v1\/totp\/enroll$/,
    status: (status) => status === 200,
    secret: /totp ?secret|otpauth|totp ?uri/i,
    why: 'TOTP enrolment through the backend API: the answer is the otpauth URI (and its QR code) for the user to scan, once; a second enrolment is refused already_enrolled (docs/threat-model.md)',
  },
  {
    method: 'POST',
    path: /^\/sys\/v1\/plugins\/[^/]+$/,
    status: (status) => status === 200,
    secret: /totp ?secret|otpauth|totp ?uri/i,
    why: "the TOTP ETH Signer compatibility API's register call answers the otpauth URI, as the plugin it replaces does (its sign call goes to the same path and must carry none: the TOTP secret is the only kind allowed)",
  },
  {
    method: 'POST',
    path: /^\/sys\/v1\/session\/auth$/,
    status: (status) => status === 200,
    secret: /access[ _]?token|session token/i,
    why: 'the compatibility API hands its session token to the backend that authenticated',
  },
  {
    method: 'POST',
    path: /^\/v1\/approvals$/,
    status: (status) => status === 201,
    secret: /approv[a-z]* ?([a-z]+ )?capability|approve ?(url|path)|page capability/i,
    why: "an approval's link (approveUrl, its capability) is handed to the backend, which passes it to the owner (docs/approvals.md)",
  },
  {
    method: 'POST',
    path: /^\/v1\/rpc$/,
    status: (status) => status === 200,
    secret: /approval ?capability|approve ?(url|path)/i,
    why: "a JSON-RPC signing call that needs the owner answers 4100 approval_pending with the approval's link, for the backend to pass on (docs/json-rpc.md)",
  },
  {
    method: 'POST',
    path: /^\/v1\/changes$/,
    status: (status) => status === 201,
    secret: /change ?(capability|path|url)/i,
    why: "a requested change's link (changeUrl, its capability) is handed to the backend, which passes it to the owner (docs/timelock.md)",
  },
  {
    method: 'POST',
    path: /^\/v1\/enrollments$/,
    status: (status) => status === 201,
    secret: /enrol(l)?ment ?(capability|url|path)|enroll ?url|page capability|enroll-link (link|capability)/i,
    why: 'an enrolment link (enrollUrl, its capability) is handed to the backend, which passes it to the user (docs/enrolment-page.md)',
  },
  {
    path: /^\/(changes|approve|enroll)\/[^/]+$/,
    secret: /owner ?capability|owner path/i,
    why: 'the enrolment, change and approval pages — shown (and answering their forms) to the owner — link to the owner page ("Not you? See this wallet"): the owner capability, by design (docs/approval-page.md)',
  },
  {
    method: 'POST',
    path: /^\/enroll\/[^/]+$/,
    status: (status) => status === 200,
    secret: /recovery ?code/i,
    why: 'the enrolment page shows the new recovery codes once, when the enrolment completes (docs/enrolment-page.md)',
  },
];

/**
 * Every form of every secret, by its first four bytes: one pass over a file finds them all (a
 * search per secret and form would read a run's hundreds of megabytes of logs thousands of times).
 */
function buildIndex(secrets) {
  const byPrefix = new Map();
  // A first filter on the first three bytes (a bit each): most positions of a file end there.
  const filter = new Uint8Array(1 << 21);
  secrets.forEach((secret, number) => {
    const forms = secret.code ? [Buffer.from(secret.value, 'latin1')] : secretForms(secret.value);
    forms.forEach((bytes, i) => {
      const key = bytes.readUInt32LE(0);
      const three = key & 0xffffff;
      filter[three >>> 3] |= 1 << (three & 7);
      const entry = { secret: number, bytes, form: i === 0 ? 'text' : 'encoded', code: secret.code };
      const list = byPrefix.get(key);
      if (list === undefined) byPrefix.set(key, [entry]);
      else list.push(entry);
    });
  });
  return { byPrefix, filter };
}

const WORD = /[0-9A-Za-z]/;

/** Map secret number → form of its first match in bytes; a code only in text, and only as a whole token. */
function findSecrets(bytes, text, { byPrefix, filter }) {
  const found = new Map();
  const end = bytes.length - 3;
  for (let i = 0; i < end; i++) {
    const three = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16);
    if ((filter[three >>> 3] & (1 << (three & 7))) === 0) continue;
    const candidates = byPrefix.get(bytes.readUInt32LE(i));
    if (candidates === undefined) continue;
    for (const c of candidates) {
      if (found.has(c.secret) || i + c.bytes.length > bytes.length) continue;
      if (bytes.compare(c.bytes, 0, c.bytes.length, i, i + c.bytes.length) !== 0) continue;
      if (c.code) {
        if (!text) continue;
        const before = i > 0 ? String.fromCharCode(bytes[i - 1]) : '';
        const after = i + c.bytes.length < bytes.length ? String.fromCharCode(bytes[i + c.bytes.length]) : '';
        // '#000000' is a colour (a page's style, an SVG's stroke), not a code a test recorded
        if (before === '.' || before === '#' || WORD.test(before) || WORD.test(after)) continue;
      }
      found.set(c.secret, c.form);
    }
  }
  return found;
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
  log(
    `secret scan: ${result.secrets} secrets, ${result.files} files (${result.dumps} database dumps, ${result.responses} HTTP responses, ${result.handedOut} secrets handed out by design), ${result.leaks.length} leaks`,
  );
  for (const leak of result.leaks) log(`  leak: ${leak.label} in ${leak.file}${leak.form === 'text' ? '' : ` (${leak.form})`}`);
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
