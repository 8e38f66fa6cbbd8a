// Offline check of a release dossier (docs/formats.md "Dossiers") in the browser, trusting only the
// ledger key the auditor pins: the JavaScript twin of ledger/verify/dossier.py (`evledger verify`),
// the same rules in the same order, so that a dossier one refuses the other refuses too.
//
// A dossier is one JSON object: `format` ("evledger-dossier/v1"), `product`, `version`, one signed
// `checkpoint` note, and `entries`, `keys` and `policy` as proven entries
// `{"index": N, "entry": "<base64 of the entry's exact bytes>", "inclusion_proof": ["<hex>", ...]}`,
// plus `evaluated_at`, `environment`, `compliance` and optionally `timestamps` and `index_proof`.
//
// Checked here, in this order (the first that fails is the reason given):
//   1. the dossier's fields and their types, and its format; no unknown field;
//   2. the checkpoint: a C2SP signed note signed by the pinned key (note.js); its extension lines;
//   3. every proven entry (key events, policy, release entries) is canonical (entry.js) and is
//      the leaf it claims to be of the checkpoint's tree (RFC 9162 §2.1.3.2, merkle.js);
//   4. the key-event chain, complete and unbroken up to the entry the checkpoint's
//      `evledger-keys N` line names, replayed into a registry of keys, roles, products, expiry
//      and revocations (registry.js), each key event validly signed by an admin key at its index;
//   5. the policy entry: a published policy, signed by an admin key;
//   6. every release entry's DSSE signatures against the keys registered, unrevoked and unexpired
//      at its index, allowed for its product; an approval by a key holding its role; a seal by a
//      key holding a sealing role of the policy in force (registry.js);
//   7. the artifact back-links the entries' sha256 subjects imply (chains.js);
//   8. the release's own chain (seq and prev links) and its seal; with an `evledger-index` line,
//      the completeness index proof naming the chain's head and count (index.js);
//   9. the timestamps are base64 tokens; and, beyond the Python verifier, the log's hash chain:
//      an entry's `prev` is the leaf hash of the entry before it wherever the dossier holds both.
//
// NOT checked here (NOT_CHECKED_IN_BROWSER), only by `evledger verify`: the compliance result
// re-evaluated with the policy engine; each predicate's fields against its schema and the
// policy's contents and digest; a witness cosignature quorum; RFC 3161 timestamps.

import { VerificationError, hashFromHex, leafHash, toHex, verifyInclusion } from "./merkle.js";
import { decodeBase64, openCheckpoint, parseVerifierKey } from "./note.js";
import { GENESIS_PREV, parseEntry } from "./entry.js";
import { parseJson } from "./json.js";
import { KeyRegistry, admit, admitGenesis } from "./registry.js";
import { checkArtifactLinks, checkKeyEventLinks, checkReleaseChain, completeness, firstBreak, member } from "./chains.js";
import { KEY_CHAIN_EXTENSION, indexLineOf, keyChainHeadOf, releaseKey, verifyIndexProof } from "./index.js";
import { Shape, int, list, object, optional, str, struct } from "./schema.js";

export const DOSSIER_FORMAT = "evledger-dossier/v1";

/** What this verifier establishes, in words (the verdict names the first four). */
export const CHECKED_IN_BROWSER = Object.freeze([
  "checkpoint signed by the pinned ledger key",
  "every entry canonical and included in the checkpoint's tree (RFC 9162 inclusion proofs)",
  "key-event chain complete up to the entry the checkpoint names, replayed into a key registry",
  "every signature by a key registered, unrevoked and unexpired at its entry, allowed for its product and role; admin records and the policy by admin keys; the seal by a sealing role",
  "artifact back-links, and the release chain unbroken with its seal",
  "completeness index proof of the release's head (when the checkpoint commits to an index)",
  "the log's hash chain between consecutive entries held",
]);

/** What only `evledger verify` checks: a dossier passing here is verified for everything else. */
export const NOT_CHECKED_IN_BROWSER = Object.freeze([
  "the compliance result, re-evaluated from the evidence and the policy (the policy engine)",
  "each predicate's fields against its schema, and the published policy's contents and digest",
  "a witness cosignature quorum (evledger verify --witness-policy)",
  "RFC 3161 trusted timestamps, and entry and evaluation times against them (evledger verify --tsa-cert)",
]);

const fail = (message, details) => {
  throw new VerificationError(message, details);
};

/** A VerificationError as Python prints one: the message, then both sides when known. */
const told = (exc) =>
  exc.expected !== undefined || exc.calculated !== undefined ? `${exc.message} (expected ${exc.expected ?? ""}, calculated ${exc.calculated ?? ""})` : exc.message;

const proven = (v, w) => struct(v, { index: [int, true], entry: [str, true], inclusion_proof: [list(str), true] }, w);
const dossierShape = (v) =>
  struct(
    v,
    {
      format: [str, true], product: [str, true], version: [str, true], checkpoint: [str, true],
      entries: [list(proven), true], keys: [list(proven), true], policy: [optional(proven), true],
      evaluated_at: [str, true], environment: [optional(str), true], compliance: [object, true],
      timestamps: [list(str), false], index_proof: [optional(str), false],
    },
    "$",
  ); // prettier-ignore

/** Parse a dossier (JSON text or a parsed object) as dossier.py decode_dossier reads it. */
export function decodeDossier(input, source = "the dossier") {
  try {
    const value = typeof input === "string" ? parseJson(input) : input;
    const dossier = dossierShape(value);
    return { timestamps: [], index_proof: null, ...dossier };
  } catch (exc) {
    if (!(exc instanceof Shape || exc instanceof VerificationError)) throw exc;
    return fail(`${source} is not an intact dossier: ${exc.message}`);
  }
}

function inLogOrder(items, what) {
  for (let i = 1; i < items.length; i++) {
    if (items[i].index <= items[i - 1].index) fail(`${what} are not in log order: entry ${items[i].index} follows ${items[i - 1].index}`);
  }
}

/** One proven entry: canonical, its listed index its own, included in the checkpoint's tree. */
async function prove(item, checkpoint, what) {
  let bytes, proof, entry;
  try {
    bytes = decodeBase64(item.entry, `${what} ${item.index}`);
    proof = item.inclusion_proof.map((h) => hashFromHex(h, "proof hash"));
    entry = parseEntry(bytes);
  } catch (exc) {
    if (!(exc instanceof VerificationError)) throw exc;
    return fail(`${what} ${item.index} is malformed: ${told(exc)}`);
  }
  if (entry.index !== item.index) fail(`${what} listed as ${item.index} is entry ${entry.index}`);
  const leaf = await leafHash(bytes); // the hash of the bytes given, never of a re-encoding
  try {
    await verifyInclusion(item.index, checkpoint.size, leaf, proof, checkpoint.rootHash);
  } catch (exc) {
    if (!(exc instanceof VerificationError)) throw exc;
    fail(`${what} ${item.index} is not in the tree of the dossier's checkpoint (size ${checkpoint.size}): ${exc.message}`, {
      expected: exc.expected,
      calculated: exc.calculated,
    });
  }
  return { index: item.index, bytes, entry, leafHash: toHex(leaf) };
}

/** Admission failures of entry `index` as what they mean in a dossier: a failed verification. */
async function validAtItsIndex(index, check) {
  try {
    return await check();
  } catch (exc) {
    if (!(exc instanceof VerificationError)) throw exc;
    return fail(`entry ${index}: its signature is not valid at its index: ${told(exc)}`);
  }
}

const admitAt = (p, registry) =>
  validAtItsIndex(p.index, () => (p.index === 0 ? admitGenesis(p.entry.envelope) : admit(p.entry.envelope, registry, p.index, p.entry.at)));

/** Rebuild the registry from the complete key-event chain ending at entry `head` (dossier.py `_replay_keys`). */
async function replayKeys(keys, head) {
  if (!keys.length || keys.at(-1).index !== head) {
    fail("the dossier's key events do not end at the checkpoint's newest key event", {
      expected: String(head),
      calculated: String(keys.length ? keys.at(-1).index : null),
    });
  }
  const broken = firstBreak(keys.map((p) => member(p, p.entry.keys)));
  if (broken !== null) {
    fail(`key event ${broken.member.index} does not follow the key event before it: one is missing`, {
      expected: broken.expected === null ? "None" : `(${broken.expected[0]}, '${broken.expected[1]}')`,
      calculated: broken.actual === null ? "None" : `(${broken.actual[0]}, '${broken.actual[1]}')`,
    });
  }
  const registry = new KeyRegistry();
  let chainHead = null;
  for (const p of keys) {
    await validAtItsIndex(p.index, async () => {
      const admitted = await (p.index === 0 ? admitGenesis(p.entry.envelope) : admit(p.entry.envelope, registry, p.index, p.entry.at));
      const next = checkKeyEventLinks(p, chainHead);
      if (admitted.admin !== null) registry.apply(p.index, admitted.admin);
      chainHead = next;
    });
  }
  return registry;
}

/** The registry to judge entry `index` by: with the sealing roles of the policy in force there, if known. */
function asOf(registry, policy, index) {
  const judged = registry.copy();
  judged.sealRoles = policy !== null && index > policy.index ? policy.record.sealRoles : null;
  return judged;
}

/** The release chain's head in the completeness index the checkpoint commits to (dossier.py `_check_index_head`). */
async function checkIndexHead(dossier, root, chained, size) {
  if (dossier.index_proof === null) {
    fail(
      `the checkpoint of ${size} entries commits to a completeness index, but the dossier carries no index proof ` +
        "for the release: it cannot show that no event is left out",
    );
  }
  let proof, head;
  try {
    proof = decodeBase64(dossier.index_proof, "the dossier's index proof");
    head = await verifyIndexProof(root, await releaseKey(dossier.product, dossier.version), proof);
  } catch (exc) {
    if (!(exc instanceof VerificationError) || (proof !== undefined && !exc.malformed)) throw exc;
    return fail(`the dossier's index proof is malformed: ${exc.message}`); // a dossier that fails, not bad input
  }
  const newest = chained.at(-1);
  const held = newest ? [String(chained.length), String(newest.index), newest.leafHash] : ["0", "None", "None"];
  const named = head ? [String(head.count), String(head.lastIndex), toHex(head.lastLeaf)] : ["0", "None", "None"];
  if (held.some((v, i) => v !== named[i])) {
    fail(
      `the release's events in the dossier are not all of them: the completeness index of checkpoint ${size} counts ` +
        `${named[0]} events ending at entry ${named[1]}, the dossier holds ${held[0]} ending at entry ${held[1]}`,
      {
        expected: `${named[0]} events, newest entry ${named[1]} (leaf ${named[2]})`,
        calculated: `${held[0]} events, newest entry ${held[1]} (leaf ${held[2]})`,
      },
    );
  }
}

/** Consecutive entries held must link: `prev` of entry i+1 is the leaf hash of entry i; entry 0's is zeros. */
function checkHashChain(all) {
  const byIndex = new Map(all.map((p) => [p.index, p]));
  for (const p of [...byIndex.values()].sort((a, b) => a.index - b.index)) {
    const before = p.index === 0 ? { leafHash: GENESIS_PREV } : byIndex.get(p.index - 1);
    if (before && p.entry.prev !== before.leafHash) {
      fail(`entry ${p.index} does not link to the leaf hash of entry ${p.index - 1}`, { expected: before.leafHash, calculated: p.entry.prev });
    }
  }
}

/** What a verified dossier proves about its release being whole (ledger/rules/completeness.py). */
function describeCompleteness({ sealedAt, last, length }, indexed, size) {
  if (sealedAt !== null) {
    return { complete: true, headline: `sealed at entry ${sealedAt}: complete`, statement: `sealed at entry ${sealedAt}: complete. The seal commits to the ${length - 1} release events before it, and no event can join the release after it.` };
  }
  if (indexed) {
    return { complete: true, headline: `complete at checkpoint ${size}: ${length} of ${length} events (not sealed)`, statement: `complete at checkpoint ${size}: ${length} of ${length} events. The completeness index committed by the checkpoint counts ${length} events of the release, and the dossier holds every one of them. The release is not sealed: events recorded after that checkpoint may join it.` };
  }
  const shown = last === null ? "the dossier shows no event of the release's chain" : `completeness is proven only up to the last event shown, entry ${last.index} (event ${last.seq} of the release, counted from 0, recorded ${last.time})`;
  return { complete: false, headline: "OPEN (not sealed): completeness proven only up to the last event shown", statement: `OPEN (not sealed): ${shown}. Later events of this release under the checkpoint of ${size} entries may exist and are not proven absent.` };
} // prettier-ignore

/**
 * Check a dossier (its JSON text, or the parsed object) against the ledger's verifier key string
 * `<name>+<key ID>+<base64 key>`. Throws a VerificationError at the first thing that does not
 * hold. Returns `{checkpoint, keys, policy, entries, completeness, checks, verdict, notChecked}`.
 */
export async function verifyDossier(input, verifierKeyString) {
  const dossier = decodeDossier(input);
  if (dossier.format !== DOSSIER_FORMAT) fail(`not a ${DOSSIER_FORMAT} dossier`, { expected: DOSSIER_FORMAT, calculated: dossier.format });
  const key = await parseVerifierKey(verifierKeyString);
  const checkpoint = await openCheckpoint(dossier.checkpoint, key);
  const checks = [`checkpoint signed by ${key.keyid}: size ${checkpoint.size}`];
  let line;
  try {
    line = indexLineOf(checkpoint.extensions);
  } catch (exc) {
    return fail(`the dossier's checkpoint has a malformed index line: ${exc.message}`);
  }
  inLogOrder(dossier.keys, "key events");
  inLogOrder(dossier.entries, "release entries");
  const keys = [];
  for (const item of dossier.keys) keys.push(await prove(item, checkpoint, "key event"));
  const head = keyChainHeadOf(checkpoint.extensions);
  if (head === null) fail(`the checkpoint does not name its newest key event (${KEY_CHAIN_EXTENSION})`);
  const registry = await replayKeys(keys, head);
  checks.push(`${keys.length} key events: complete chain up to entry ${keys.at(-1).index}, signatures valid`);
  let policy = null;
  if (dossier.policy !== null) {
    const p = await prove(dossier.policy, checkpoint, "policy entry");
    const record = (await admitAt(p, registry)).admin;
    if (record === null || record.kind !== "policy.published") fail(`entry ${p.index} is not a published policy`);
    policy = { index: p.index, record, proven: p };
    checks.push(`policy entry ${p.index}: included and signed by an admin key`);
  }
  const entries = [];
  for (const item of dossier.entries) entries.push(await prove(item, checkpoint, "release entry"));
  const admitted = new Map();
  for (const p of entries) admitted.set(p.index, await admitAt(p, asOf(registry, policy, p.index)));
  checks.push(`${entries.length} entries: included, signed by keys registered and unrevoked at their index`);
  const carrying = checkArtifactLinks(entries, admitted, line ? line.chainedFrom : null);
  if (carrying) checks.push(`artifact back-links of ${carrying} entries: as their subjects imply, consistent`);
  const chained = entries.filter((p) => p.entry.release !== null);
  checkReleaseChain(chained, dossier.product, dossier.version);
  const chain = completeness(chained, admitted);
  checks.push(`release chain of ${chained.length} events unbroken from its first event`);
  if (line !== null) {
    await checkIndexHead(dossier, line.root, chained, checkpoint.size);
    checks.push(`completeness index of checkpoint ${checkpoint.size}: the release's head is its entry ${chained.length ? chained.at(-1).index : "-"}, ${chained.length} events, all held`);
  }
  if (chain.sealedAt !== null) checks.push(`release seal at entry ${chain.sealedAt} commits to the chain before it`);
  for (const token of dossier.timestamps) {
    try {
      decodeBase64(token, "dossier timestamp token");
    } catch (exc) {
      fail(exc.message);
    }
  }
  checkHashChain([...keys, ...(policy ? [policy.proven] : []), ...entries]);
  checks.push("hash chain: every entry held links to the entry before it, where the dossier holds both");
  const whole = describeCompleteness(chain, line !== null, checkpoint.size);
  const reach = `proofs, signatures, chains${whole.complete ? ", completeness" : ""}`;
  return {
    checkpoint, keys, policy: policy?.proven ?? null, entries, checks,
    completeness: whole,
    verdict: `VERIFIED (${reach}): ${dossier.product} ${dossier.version}, ${whole.headline}`,
    claimedCompliance: typeof dossier.compliance.status === "string" ? dossier.compliance.status : null,
    notChecked: NOT_CHECKED_IN_BROWSER,
  }; // prettier-ignore
}
