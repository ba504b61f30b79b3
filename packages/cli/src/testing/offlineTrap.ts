// Loaded with `node --import` into a process that must stay offline and leave no file behind (the
// recover test): any listen, outgoing connection, datagram, file opened for writing, directory
// created, or SQLite addon loaded ends the process at once with status 99 and names what it was.
// better-sqlite3 loads its native addon only when a database is opened, so that is the trap for
// "opened a SQLite store"; PostgreSQL would need a connection, the trap for "opened a PostgreSQL store".
import dgram from 'node:dgram';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

function trip(what: string): never {
  fs.writeSync(2, `OFFLINE TRAP: ${what}\n`);
  process.exit(99);
}

const readOnly = (flags: unknown): boolean => flags === undefined || flags === 'r' || flags === fs.constants.O_RDONLY;

net.Server.prototype.listen = function listen(): never {
  trip('net.Server.listen');
};
net.Socket.prototype.connect = function connect(): never {
  trip('net.Socket.connect');
};
dgram.Socket.prototype.bind = function bind(): never {
  trip('dgram.Socket.bind');
};
dgram.Socket.prototype.send = function send(): never {
  trip('dgram.Socket.send');
};
const dlopen = process.dlopen;
process.dlopen = function trappedDlopen(module: { exports: unknown }, filename: string, flags?: number): void {
  if (/better_sqlite3/i.test(filename)) trip(`loading ${filename} (a SQLite database is being opened)`);
  if (flags === undefined) dlopen.call(process, module, filename);
  else dlopen.call(process, module, filename, flags);
};
const openSync = fs.openSync;
fs.openSync = ((path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
  if (!readOnly(flags)) trip(`fs.openSync(${String(path)}, ${String(flags)})`);
  return openSync(path, flags ?? 'r', mode);
}) as typeof fs.openSync;
const open = fs.open;
fs.open = ((path: fs.PathLike, ...rest: unknown[]) => {
  if (typeof rest[0] !== 'function' && !readOnly(rest[0])) trip(`fs.open(${String(path)}, ${String(rest[0])})`);
  return (open as (...args: unknown[]) => void)(path, ...rest);
}) as typeof fs.open;
const promisesOpen = fs.promises.open;
fs.promises.open = ((path: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
  if (!readOnly(flags)) trip(`fs.promises.open(${String(path)}, ${String(flags)})`);
  return flags === undefined ? promisesOpen(path) : promisesOpen(path, flags, mode);
}) as typeof fs.promises.open;
for (const name of [
  'mkdirSync',
  'mkdtempSync',
  'writeFileSync',
  'appendFileSync',
  'mkdir',
  'mkdtemp',
  'writeFile',
  'appendFile',
  'createWriteStream',
] as const) {
  (fs as unknown as Record<string, unknown>)[name] = () => trip(`fs.${name}`);
}
for (const name of ['mkdir', 'mkdtemp', 'writeFile', 'appendFile'] as const) {
  (fs.promises as unknown as Record<string, unknown>)[name] = () => trip(`fs.promises.${name}`);
}
syncBuiltinESMExports();
