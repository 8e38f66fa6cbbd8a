// A first offline check of a release dossier (docs/formats.md "Dossiers"), trusting only the
// ledger's public key the auditor pins.
//
// A dossier is one JSON object: `format` ("evledger-dossier/v1"), `product`, `version`, one signed
// `checkpoint` note, and `entries`, `keys` and `policy` as proven entries
// `{"index": N, "entry": "<base64 of the entry's exact bytes>", "inclusion_proof": ["<hex>", ...]}`,
// plus `evaluated_at`, `environment`, `compliance` and optionally `timestamps` and `index_proof`.
//
// What this verifier checks:
//   1. the format is evledger-dossier/v1 and the dossier has no unknown fields;
//   2. the checkpoint is a C2SP signed note signed by the pinned key (note.js); other signature
//      lines, such as witness cosignatures, are ignored;
//   3. every proven entry (key events, policy, release entries) is the leaf it claims to be of the
//      checkpoint's tree: leaf hash = SHA-256(0x00 || the exact entry bytes), RFC 9162 §2.1.3.2
//      inclusion proof against the checkpoint's root and size (merkle.js); the entry's JSON
//      `index` is the index it is listed and proven at; `keys` and `entries` are in log order.
//
// What the Python verifier (ledger/verify/dossier.py, `evledger verify`) also checks and this one
// does NOT yet — until it does, a dossier passing here is NOT a verified release:
//   - that each entry is canonical (sorted keys, no whitespace, no floats, no unknown fields, v 1,
//     well-formed times, hashes and chain links), by decoding and re-encoding it;
//   - the key-event chain: complete and unbroken up to the entry the checkpoint's
//     `evledger-keys N` line names, replayed into a registry of keys, roles, products, expiry
//     and revocations;
//   - every entry's DSSE signatures (dsse.js can check one) against the keys registered and not
//     revoked or expired at that entry's index, allowed for its product and role; the policy entry
//     signed by an admin key, and a seal by a key holding a sealing role of the policy in force;
//   - the release's own hash chain (seq and prev links), and its seal committing to that chain;
//   - the artifact back-links the entries' subjects imply;
//   - the completeness index: with an `evledger-index` line, the `index_proof` (sparse Merkle
//     proof) naming the chain's head and count, so that no release event is left out;
//   - the compliance result, re-evaluated from the evidence and the policy;
//   - with a witness policy or a TSA certificate: the cosignature quorum, the RFC 3161
//     `timestamps`, and entry and evaluation times against them.

import { VerificationError, hashFromHex, leafHash, toHex, verifyInclusion } from "./merkle.js";
import { decodeBase64, openCheckpoint, parseVerifierKey } from "./note.js";

export const DOSSIER_FORMAT = "evledger-dossier/v1";

/** What verifyDossier does not establish yet (see the comment at the top of this file), for display. */
export const NOT_YET_CHECKED = Object.freeze([
  "entries are canonical",
  "key-event chain complete up to the checkpoint's evledger-keys entry",
  "entry signatures by keys registered and unrevoked at their index",
  "release chain unbroken, and its seal",
  "artifact back-links",
  "completeness index proof",
  "compliance result re-evaluated",
  "witness cosignatures and trusted timestamps",
]);

const DOSSIER_FIELDS = new Set([
  "format", "product", "version", "checkpoint", "entries", "keys", "policy",
  "evaluated_at", "environment", "compliance", "timestamps", "index_proof",
]);
const REQUIRED_FIELDS = [...DOSSIER_FIELDS].filter((f) => f !== "timestamps" && f !== "index_proof");
const PROVEN_FIELDS = ["index", "entry", "inclusion_proof"];

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

function checkFields(dossier) {
  if (!isObject(dossier)) throw new VerificationError("the dossier is not a JSON object");
  const unknown = Object.keys(dossier).filter((f) => !DOSSIER_FIELDS.has(f));
  if (unknown.length) throw new VerificationError(`the dossier has unknown fields: ${unknown.join(", ")}`);
  const missing = REQUIRED_FIELDS.filter((f) => !(f in dossier));
  if (missing.length) throw new VerificationError(`the dossier lacks fields: ${missing.join(", ")}`);
  if (dossier.format !== DOSSIER_FORMAT) {
    throw new VerificationError(`not a ${DOSSIER_FORMAT} dossier`, { expected: DOSSIER_FORMAT, calculated: dossier.format });
  }
  if (typeof dossier.checkpoint !== "string") throw new VerificationError("the dossier's checkpoint is not a string");
  for (const list of ["keys", "entries"]) {
    if (!Array.isArray(dossier[list])) throw new VerificationError(`the dossier's ${list} is not a list`);
  }
}

function checkProvenShape(item, what) {
  const ok =
    isObject(item) &&
    Object.keys(item).length === PROVEN_FIELDS.length &&
    PROVEN_FIELDS.every((f) => f in item) &&
    Number.isSafeInteger(item.index) &&
    item.index >= 0 &&
    typeof item.entry === "string" &&
    Array.isArray(item.inclusion_proof);
  if (!ok) throw new VerificationError(`a ${what} is not {index, entry, inclusion_proof}`);
}

function inLogOrder(items, what) {
  for (let i = 1; i < items.length; i++) {
    if (items[i].index <= items[i - 1].index) {
      throw new VerificationError(`${what} are not in log order: entry ${items[i].index} follows ${items[i - 1].index}`);
    }
  }
}

/** One proven entry: decoded, its listed index its own, included in the checkpoint's tree. */
async function prove(item, checkpoint, what) {
  checkProvenShape(item, what);
  let bytes, proof, entry;
  try {
    bytes = decodeBase64(item.entry, `${what} ${item.index}`);
    proof = item.inclusion_proof.map((h) => hashFromHex(h, "proof hash"));
    entry = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (exc) {
    throw new VerificationError(`${what} ${item.index} is malformed: ${exc.message}`, { cause: exc });
  }
  if (!isObject(entry) || entry.index !== item.index) {
    throw new VerificationError(`${what} listed as ${item.index} is entry ${isObject(entry) ? entry.index : "?"}`);
  }
  // The hash of the bytes given, never of a re-encoding (docs/formats.md "Entries").
  const leaf = await leafHash(bytes);
  try {
    await verifyInclusion(item.index, checkpoint.size, leaf, proof, checkpoint.rootHash);
  } catch (exc) {
    if (!(exc instanceof VerificationError)) throw exc;
    throw new VerificationError(
      `${what} ${item.index} is not in the tree of the dossier's checkpoint (size ${checkpoint.size}): ${exc.message}`,
      { expected: exc.expected, calculated: exc.calculated },
    );
  }
  return { index: item.index, bytes, entry, leafHash: toHex(leaf) };
}

/**
 * Check a dossier (a parsed JSON object, or its JSON text) against the ledger's verifier key
 * string `<name>+<key ID>+<base64 key>`: the checkpoint's signature and every entry's inclusion
 * proof (see the top of this file for what is not checked yet). Throws a VerificationError at
 * the first thing that does not hold. Returns
 * `{checkpoint, keys, policy, entries, checks, notChecked}`: the opened checkpoint, the proven
 * entries (`{index, bytes, entry, leafHash}`), what was established, in words, and what was not.
 */
export async function verifyDossier(dossier, verifierKeyString) {
  if (typeof dossier === "string") {
    try {
      dossier = JSON.parse(dossier);
    } catch (exc) {
      throw new VerificationError(`the dossier is not JSON: ${exc.message}`);
    }
  }
  checkFields(dossier);
  const key = await parseVerifierKey(verifierKeyString);
  const checkpoint = await openCheckpoint(dossier.checkpoint, key);
  const checks = [`checkpoint signed by ${key.keyid}: size ${checkpoint.size}`];
  inLogOrder(dossier.keys, "key events");
  inLogOrder(dossier.entries, "release entries");
  const keys = [];
  for (const item of dossier.keys) keys.push(await prove(item, checkpoint, "key event"));
  const policy = dossier.policy === null ? null : await prove(dossier.policy, checkpoint, "policy entry");
  const entries = [];
  for (const item of dossier.entries) entries.push(await prove(item, checkpoint, "release entry"));
  checks.push(
    `${keys.length} key events, ${policy ? "the policy entry" : "no policy entry"} and ${entries.length} ` +
      `release entries: included in the checkpoint's tree`,
  );
  return { checkpoint, keys, policy, entries, checks, notChecked: NOT_YET_CHECKED };
}
