import { CustosError, invalidInput } from '../errors.js';
import { assertBytes } from './assertBytes.js';
import { ckdPriv } from './ckdPriv.js';
import { loadSecp256k1 } from './loadSecp256k1.js';
import { type DerivationScheme, HARDENED_OFFSET, type HDNode } from './types.js';
import { walletPath } from './walletPath.js';

export interface KeyDeriverOptions {
  /** The BIP32 master node. Copied in: the caller may (and should) wipe its own copy afterwards. */
  master: HDNode;
  scheme: DerivationScheme;
  /** How many wallets' parent nodes to keep (least recently used evicted and wiped first); 0 disables the cache. */
  maxCachedWallets?: number;
}

export interface KeyDeriver {
  /** The private key at walletPath(scheme, walletName, keyIndex): a fresh buffer the caller wipes. */
  derivePrivateKey(walletName: string, keyIndex: number): Uint8Array;
  /** How many wallets' parent nodes are cached now. */
  readonly cachedWallets: number;
  /** Zeroes the master and every cached node; every later call throws `sealed`. Idempotent. */
  wipe(): void;
  /**
   * How many secret buffers (master and cached nodes: private keys, chain codes) the deriver holds
   * and how many of them still hold a non-zero byte — so that a test can show wipe() zeroed them
   * all, without any byte of them leaving the deriver.
   */
  secretBufferState(): { buffers: number; nonZero: number };
}

/** The last path level for keyIndex: hardened in custos-v1, not in fortanix-v1 (as walletPath). */
function leafIndexOf(scheme: DerivationScheme, keyIndex: number): number {
  if (typeof keyIndex !== 'number' || !Number.isInteger(keyIndex) || keyIndex < 0 || keyIndex >= HARDENED_OFFSET) {
    throw invalidInput('keyIndex', 'an integer in [0, 2^31)', typeof keyIndex === 'number' ? String(keyIndex) : typeof keyIndex);
  }
  return scheme === 'custos-v1' ? (keyIndex | HARDENED_OFFSET) >>> 0 : keyIndex;
}

/** A cached wallet: the node just above the key-index level, and (fortanix-v1) its compressed public key. */
interface WalletEntry {
  node: HDNode;
  publicKey: Uint8Array | undefined;
}

function wipeEntry(entry: WalletEntry): void {
  entry.node.privateKey.fill(0);
  entry.node.chainCode.fill(0);
  entry.publicKey?.fill(0);
}

/**
 * Derives wallet keys from a BIP32 master on libsecp256k1 (CKDpriv ≈ 20 µs a level), caching per
 * wallet name the node at the level just above keyIndex, so that the keys of a known wallet
 * cost one CKDpriv. The cache is an LRU (a Map in insertion order) of at most `maxCachedWallets`
 * entries; evicted entries are zeroed.
 */
/**
 * How many wallets' nodes (and, in the barrier, leaf public keys) are kept by default: 10,000 — the
 * hot wallets of a large deployment. Each is about 1–2 KB of heap and a private node in memory; at
 * 100,000 a steady stream of new wallets (a backend registering users, an attacker with an API key
 * under `--unknown-wallets allow`) grew the kernel's heap by ~2.5 MB a second for over a minute
 * (issue 14, point 5: RSS under load), and kept that many private nodes resident.
 */
export const DEFAULT_MAX_CACHED_WALLETS = 10_000;

export function createKeyDeriver({ master, scheme, maxCachedWallets = DEFAULT_MAX_CACHED_WALLETS }: KeyDeriverOptions): KeyDeriver {
  if (typeof master !== 'object' || master === null) throw invalidInput('master', 'an HDNode', String(master));
  assertBytes(master.privateKey, 32, 'master.privateKey');
  assertBytes(master.chainCode, 32, 'master.chainCode');
  if (scheme !== 'custos-v1' && scheme !== 'fortanix-v1') throw invalidInput('scheme', "'custos-v1' or 'fortanix-v1'");
  if (!Number.isSafeInteger(maxCachedWallets) || maxCachedWallets < 0) {
    throw invalidInput('maxCachedWallets', 'a non-negative integer', String(maxCachedWallets));
  }
  const secp = loadSecp256k1();
  if (!secp.privateKeyVerify(master.privateKey)) throw invalidInput('master.privateKey', 'a secp256k1 private key in [1, n - 1]');

  const root: HDNode = { privateKey: new Uint8Array(master.privateKey), chainCode: new Uint8Array(master.chainCode) };
  const cache = new Map<string, WalletEntry>();
  let sealed = false;
  let wipedBuffers: Uint8Array[] = [];
  const heldBuffers = (): Uint8Array[] => [root.privateKey, root.chainCode, ...[...cache.values()].flatMap((e) => [e.node.privateKey, e.node.chainCode])];

  function deriveWallet(path: readonly number[]): WalletEntry {
    let node = root;
    try {
      for (let level = 0; level < path.length - 1; level++) {
        const child = ckdPriv(node, path[level] as number);
        if (node !== root) wipeEntry({ node, publicKey: undefined });
        node = child;
      }
      // the leaf level is non-hardened only in fortanix-v1: keep the parent public key it needs
      const publicKey = scheme === 'fortanix-v1' ? secp.publicKeyCreate(node.privateKey, true) : undefined;
      return { node, publicKey };
    } catch (error) {
      if (node !== root) wipeEntry({ node, publicKey: undefined });
      throw error;
    }
  }

  return {
    derivePrivateKey(walletName: string, keyIndex: number): Uint8Array {
      if (sealed) throw new CustosError('sealed', 'the key deriver has been wiped');
      let entry = cache.get(walletName);
      let leafIndex: number;
      if (entry !== undefined) {
        // Hot path: the wallet's node is cached, so only the leaf index is needed (no path hash).
        leafIndex = leafIndexOf(scheme, keyIndex);
        // LRU: move to the most recently used end
        cache.delete(walletName);
        cache.set(walletName, entry);
      } else {
        const path = walletPath(scheme, walletName, keyIndex);
        leafIndex = path[path.length - 1] as number;
        entry = deriveWallet(path);
        if (maxCachedWallets > 0) {
          cache.set(walletName, entry);
          for (const [name, oldest] of cache) {
            if (cache.size <= maxCachedWallets) break;
            cache.delete(name);
            wipeEntry(oldest);
          }
        }
      }
      try {
        const leaf = ckdPriv(entry.node, leafIndex, entry.publicKey);
        leaf.chainCode.fill(0);
        return leaf.privateKey;
      } finally {
        if (maxCachedWallets === 0) wipeEntry(entry);
      }
    },

    get cachedWallets(): number {
      return cache.size;
    },

    secretBufferState(): { buffers: number; nonZero: number } {
      const buffers = sealed ? wipedBuffers : heldBuffers();
      return { buffers: buffers.length, nonZero: buffers.filter((b) => b.some((byte) => byte !== 0)).length };
    },

    wipe(): void {
      // Remember what was zeroed (references to zeroed buffers only) so that secretBufferState can
      // still show it after the cache is cleared.
      if (!sealed) wipedBuffers = heldBuffers();
      for (const entry of cache.values()) wipeEntry(entry);
      cache.clear();
      root.privateKey.fill(0);
      root.chainCode.fill(0);
      sealed = true;
    },
  };
}
