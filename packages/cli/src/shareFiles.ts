import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CustosError, parseShareFile, type ShareFileOut, type UnsealShare } from '@custos/kernel';

const SHARE_NAME = /^share-\d+\.json(\.tmp)?$/;

/**
 * Refuses a share directory that already holds share files: new shares never overwrite old ones
 * (during a rekey the old shares must stay valid until the store has switched).
 */
export function assertShareDirFree(dir: string): void {
  if (!existsSync(dir)) return;
  const clash = readdirSync(dir).find((name) => SHARE_NAME.test(name));
  if (clash !== undefined)
    throw new CustosError('invalid_input', `--share-dir: ${dir} already holds ${clash}; give an empty or new directory (old shares are never overwritten)`, {
      details: { field: 'share-dir' },
    });
}

/**
 * Writes the share files durably: each to a temporary name (mode 0600, created exclusively),
 * fsynced, renamed to `share-<i>.json`, then the directory fsynced — so that when this returns,
 * every share is on disk under its final name. The directory is created with mode 0700.
 */
export function writeShareFiles(dir: string, files: readonly ShareFileOut[]): void {
  assertShareDirFree(dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const file of files) {
    const final = join(dir, file.name);
    const temp = `${final}.tmp`;
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeSync(fd, file.text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, final);
  }
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Reads and checks share files (checksum, format); the caller wipes the share bytes. */
export function readShareFiles(paths: readonly string[], option = 'share-file'): UnsealShare[] {
  const shares: UnsealShare[] = [];
  try {
    for (const path of paths) shares.push(parseShareFile(readShareText(path, option)));
  } catch (error) {
    for (const s of shares) s.share.fill(0);
    throw error;
  }
  return shares;
}

/** The text of one share file (bounded: a share file is small). */
export function readShareText(path: string, option = 'share-file'): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new CustosError('invalid_input', `--${option}: cannot read ${path}`, { details: { field: option }, cause: error });
  }
  return text;
}

/**
 * One line per share file for the operator who hands them out: name, index, threshold, share set
 * and the first 16 hex digits of its checksum (so that each operator can confirm they hold the file
 * that was written). Never the share itself.
 */
export function describeShareFiles(dir: string, files: readonly ShareFileOut[]): string {
  return files
    .map((file) => {
      const o = JSON.parse(file.text) as { index: number; threshold: number; shares: number; shareSetId: string; checksum: string };
      return `  ${join(dir, file.name)}  share ${o.index} of ${o.shares}, ${o.threshold} needed, set ${o.shareSetId}, checksum ${o.checksum.slice(0, 16)}…\n`;
    })
    .join('');
}
