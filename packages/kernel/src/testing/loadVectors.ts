import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Reads a published test-vector file from the repository's `test/vectors/` folder. */
export function loadVectors<T = unknown>(file: string): T {
  // dist/testing/loadVectors.js -> packages/kernel -> repo root
  const url = new URL(`../../../../test/vectors/${file}`, import.meta.url);
  return JSON.parse(readFileSync(fileURLToPath(url), 'utf8')) as T;
}
