import {
  type AdminStatement,
  APPROVE_LABEL,
  type App,
  bootstrapQuorumOffline,
  computePayloadHash,
  generateAdminKey,
  type Kernel,
  PROPOSE_LABEL,
  parseAdminKeyFile,
  type ProposalView,
  type Store,
  signAdminMessage,
} from '@custos/kernel';
import { TEST_PASSPHRASE } from './createTestSigner.js';

/**
 * The quorum test fixtures shared by the suites of issue 13 (quorum, quorumWiring, policyDefaults,
 * policyDiff, ownerChanges, adminPasskeys, deploymentSettingsTamper): key-file admins, each with the
 * e-mail address every admin needs (docs/quorum.md "Every admin is told"), their set entries, proposal
 * ids, the bootstrap with the test passphrase, and proposing and approving with the admins' signatures
 * over the exact statement.
 */

/** A key-file admin: its Ed25519 key pair (as custos admin keygen writes it), a name and its address. */
export interface TestAdmin {
  publicKey: string;
  privateKey: Uint8Array;
  name: string;
  email: string;
}

/** A new key-file admin named `name`, its address `<name>@admins.example.com`. */
export function newTestAdmin(name: string): TestAdmin {
  return { ...parseAdminKeyFile(JSON.stringify(generateAdminKey())), name, email: `${name}@admins.example.com` };
}

/** The admin's entry in a quorum.set payload or a bootstrap's set: key, name and address. */
export function adminEntry(admin: TestAdmin): { publicKey: string; name: string; email: string } {
  return { publicKey: admin.publicKey, name: admin.name, email: admin.email };
}

/** An admin set of M = `threshold` over `admins`, every one with its address. */
export function adminSet(threshold: number, admins: readonly TestAdmin[]): { threshold: number; admins: Array<ReturnType<typeof adminEntry>> } {
  return { threshold, admins: admins.map(adminEntry) };
}

/** A maker of distinct proposal ids (32 lowercase hex digits): the time in ms, then a counter. */
export function proposalIds(): () => string {
  let counter = 0;
  return () => {
    counter += 1;
    return `${Date.now().toString(16).padStart(16, '0')}${counter.toString(16).padStart(16, '0')}`.slice(-32);
  };
}

/** The bootstrap of the first admin set with the test signer's passphrase (custos admin bootstrap). */
export function bootstrapTestQuorum(
  store: Store,
  quorum: unknown,
  deployment?: unknown,
  now?: () => number,
): Promise<{ threshold: number; admins: number; apiKeysMacd: number }> {
  return bootstrapQuorumOffline({
    store,
    credential: { type: 'passphrase', passphrase: new TextEncoder().encode(TEST_PASSPHRASE) },
    quorum,
    ...(deployment === undefined ? {} : { deployment }),
    ...(now === undefined ? {} : { now }),
  });
}

/** Proposing and approving on one signer, as its admins would with custos admin propose | approve. */
export interface QuorumDriver {
  /** What the admins of proposal `id` sign: its proposer and expiry as proposed through this driver (else `fallback`'s). */
  statement(id: string, payloadHash: string): AdminStatement;
  /** `by` proposes `payload` of `kind` (id `options.id` or a new one; expiry `ttlSeconds` from the signer's clock, default 1 h). */
  propose(by: TestAdmin, kind: string, payload: unknown, options?: { id?: string; ttlSeconds?: number }): Promise<ProposalView>;
  /** `by` approves proposal `id` of the payload of `kind` it was shown. */
  approve(by: TestAdmin, id: string, kind: string, payload: unknown): Promise<ProposalView>;
  /** Proposed by `proposer`, approved by each of `approvers` in turn: the last answer (applied once M approved). */
  pass(proposer: TestAdmin, approvers: readonly TestAdmin[], kind: string, payload: unknown): Promise<ProposalView>;
  /** A new proposal id. */
  newId(): string;
  /** Records the proposer and expiry of a proposal made outside this driver (for `statement`). */
  note(id: string, proposer: string, expiresAt: number): void;
}

/**
 * A driver over `kernel()` and `app()` (functions: a suite's signer is made in its `before`), the
 * clock `now()`. `fallback`: the proposer and expiry a statement takes for an id this driver did not
 * propose (a suite's attack on an unknown or forged proposal).
 */
export function quorumDriver({
  kernel,
  app,
  now,
  newId = proposalIds(),
  fallback = () => ({ proposer: '', expiresAt: 0 }),
}: {
  kernel: () => Kernel;
  app: () => App;
  now: () => number;
  newId?: () => string;
  fallback?: () => { proposer: string; expiresAt: number };
}): QuorumDriver {
  const proposals = new Map<string, { proposer: string; expiresAt: number }>();
  const statement = (id: string, payloadHash: string): AdminStatement => ({
    signerId: kernel().signerId as string,
    id,
    payloadHash,
    ...(proposals.get(id) ?? fallback()),
  });
  const propose = (by: TestAdmin, kind: string, payload: unknown, options: { id?: string; ttlSeconds?: number } = {}) => {
    const id = options.id ?? newId();
    const expiresAt = now() + (options.ttlSeconds ?? 3600) * 1000;
    proposals.set(id, { proposer: by.publicKey, expiresAt });
    const signature = signAdminMessage(by.privateKey, PROPOSE_LABEL, statement(id, computePayloadHash(kind, payload)));
    return kernel().proposeChange(app(), { id, kind, payload, proposer: by.publicKey, signature, expiresAt });
  };
  const approve = (by: TestAdmin, id: string, kind: string, payload: unknown) => {
    const payloadHash = computePayloadHash(kind, payload);
    return kernel().approveProposal(app(), {
      id,
      admin: by.publicKey,
      payloadHash,
      signature: signAdminMessage(by.privateKey, APPROVE_LABEL, statement(id, payloadHash)),
    });
  };
  const pass = async (proposer: TestAdmin, approvers: readonly TestAdmin[], kind: string, payload: unknown) => {
    let view = await propose(proposer, kind, payload);
    for (const by of approvers) view = await approve(by, view.id, kind, payload);
    return view;
  };
  const note = (id: string, proposer: string, expiresAt: number) => void proposals.set(id, { proposer, expiresAt });
  return { statement, propose, approve, pass, newId, note };
}
