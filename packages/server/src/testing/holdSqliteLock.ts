// A second process on a signer's SQLite file, for tests: takes the write lock (BEGIN IMMEDIATE),
// says `locked` on stdout, holds it for the given time, commits, says `released` and exits — as
// `custos` run by an operator on the same data directory, or a second replica, would.
// Usage: node holdSqliteLock.js <database file> <hold ms>
import Database from 'better-sqlite3';

const [path, holdMs] = process.argv.slice(2);
if (path === undefined || holdMs === undefined) throw new Error('usage: holdSqliteLock.js <database file> <hold ms>');
const db = new Database(path);
db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\n');
setTimeout(() => {
  db.exec('COMMIT');
  db.close();
  process.stdout.write('released\n');
}, Number(holdMs));
