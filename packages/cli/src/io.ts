import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CustosError } from '@custos/kernel';

export interface Io {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  /** One line typed by the operator (a confirmation), or null at the end of input. Default: process.stdin. */
  readLine?: () => Promise<string | null>;
  /** The environment the command reads its CUSTOS_ settings from. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

/** Reads one line from process.stdin (null when it ends first): the default of Io.readLine. */
export async function readLineFromStdin(): Promise<string | null> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    return await new Promise<string | null>((resolve) => {
      rl.once('line', (line) => resolve(line));
      rl.once('close', () => resolve(null));
    });
  } finally {
    rl.close();
    process.stdin.pause();
  }
}

/**
 * Strict option parsing: unknown options and stray positionals are errors, and so is an option that
 * takes one value given twice (`--url A --url B`: which one was meant? never "the last one wins").
 * Options declared `multiple` may repeat.
 */
export function parseOptions<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T & { help: { type: 'boolean'; short: 'h' } }; strict: true; allowPositionals: false }>>['values'] {
  const config = { ...options, help: { type: 'boolean' as const, short: 'h' as const } };
  const { values, tokens } = parseArgs({ args: argv, options: config, strict: true, allowPositionals: false, tokens: true });
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option' || (config as ParseArgsConfig['options'] & object)[token.name]?.multiple === true) continue;
    if (seen.has(token.name))
      throw new CustosError('invalid_input', `--${token.name} is given more than once: give it once`, { details: { field: token.name } });
    seen.add(token.name);
  }
  return values as ReturnType<typeof parseOptions<T>>;
}

/** Reads a secret file (passphrase, mnemonic, seed). One trailing newline is dropped. */
export function readSecretFile(path: string | undefined, option: string): Uint8Array {
  if (path === undefined) throw new CustosError('invalid_input', `--${option} is required`, { details: { field: option } });
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new CustosError('invalid_input', `--${option}: cannot read ${path}`, { details: { field: option }, cause: error });
  }
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end -= 1;
  if (end > 0 && bytes[end - 1] === 0x0d) end -= 1;
  const out = new Uint8Array(bytes.subarray(0, end));
  bytes.fill(0);
  if (out.length === 0) throw new CustosError('invalid_input', `--${option}: the file is empty`, { details: { field: option } });
  return out;
}

export function requireOption(value: string | undefined, option: string): string {
  if (value === undefined || value === '') throw new CustosError('invalid_input', `--${option} is required`, { details: { field: option } });
  return value;
}
