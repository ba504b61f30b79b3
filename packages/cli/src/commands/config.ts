import { CustosError } from '@custos/kernel';
import type { Io } from '../io.js';
import { effectiveSettings, resolveServeOptions } from '../serveConfig.js';
import { checkServeSettings } from './serve.js';

const HELP = `Usage: custos config check [--config custos.yaml] [any custos serve option …]

Checks the settings custos serve would start with — its flags, the CUSTOS_ environment variables and
the config file (--config F or CUSTOS_CONFIG), flag > environment > file > default — as serve does
before it opens the store: every value, the files it names (policy, token list, TLS pair, secret
files: read, then wiped). Prints each setting, its value and where it came from (flag, env NAME,
file F (key), default); secrets are masked: a URL's password, a webhook's path, a secret given by
environment variable as ***. The store is not contacted. Exit status 0 when valid, 2 (invalid_input,
with the field) when not. See docs/configuration.md.`;

export async function configCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== 'check') throw new CustosError('invalid_input', `unknown config subcommand ${JSON.stringify(sub)}; expected check`);
  const env = io.env ?? process.env;
  const resolved = resolveServeOptions(rest, env);
  if (resolved.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  for (const warning of resolved.warnings) io.stderr.write(`custos: warning: ${warning}\n`);
  checkServeSettings(resolved, env);
  const settings = effectiveSettings(resolved, env);
  const width = Math.max(...settings.map((s) => s.option.length));
  io.stdout.write(`custos config check: valid${resolved.configFile === undefined ? ' (no config file)' : ` (config file ${resolved.configFile})`}\n`);
  for (const { option, value, source } of settings) {
    const shown = value === undefined ? '-' : Array.isArray(value) ? value.join(', ') : String(value);
    io.stdout.write(`${option.padEnd(width)}  ${shown}  [${value === undefined ? 'unset' : source}]\n`);
  }
  return 0;
}
