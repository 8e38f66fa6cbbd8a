// The completeness index (docs/completeness-index.md; ledger/core/sparse_merkle.py): a sparse
// Merkle tree with shortcut leaves, mapping each chain's index key to its head (count, newest
// index, newest leaf hash). A checkpoint's `evledger-index <base64 root> <first chained index>`
// line commits to it; a dossier's `index_proof` shows the release chain's head under that root,
// so a verifier knows how many events the release has and which one is the newest.
// Also here: the checkpoint's `evledger-keys N` line (ledger/rules/chains.py), the newest key event.

import { HASH_SIZE, VerificationError, bytesEqual, concat, sha256, toHex } from "./merkle.js";
import { decodeBase64 } from "./note.js";

export const KEY_CHAIN_EXTENSION = "evledger-keys";
export const INDEX_EXTENSION = "evledger-index";
const KEY_DOMAIN = "evledger-index-key/v1";
const LEAF_PREFIX = 0x02;
const NODE_PREFIX = 0x03;
const HEAD_SIZE = 48;
const KEY_SIZE = HASH_SIZE;
const MAX_DEPTH = 8 * KEY_SIZE;
const PROOF_VERSION = 1;
const PRESENT = 0;
const ABSENT_EMPTY = 1;
const ABSENT_OTHER = 2;
const EMPTY = new Uint8Array(HASH_SIZE);

/** A proof or line that does not decode: `malformed` tells it from one that decodes but does not hold. */
const encodingError = (message) => Object.assign(new VerificationError(message), { malformed: true });

/** The newest key event a checkpoint's extension lines name (`evledger-keys N`), or null. */
export function keyChainHeadOf(extensions) {
  for (const line of extensions) {
    const space = line.indexOf(" ");
    const [name, value] = space < 0 ? [line, ""] : [line.slice(0, space), line.slice(space + 1)];
    if (name === KEY_CHAIN_EXTENSION && (/^[0-9]+$/.test(value) || value === "-1")) return Number(value);
  }
  return null;
}

/**
 * The `{root, chainedFrom}` a checkpoint's `evledger-index` line names; null without one. A
 * VerificationError for a malformed line: a checkpoint that names an index must name it exactly.
 */
export function indexLineOf(extensions) {
  for (const line of extensions) {
    const space = line.indexOf(" ");
    const [name, value] = space < 0 ? [line, ""] : [line.slice(0, space), line.slice(space + 1)];
    if (name !== INDEX_EXTENSION) continue;
    const split = value.indexOf(" ");
    const [rootText, since] = split < 0 ? [value, ""] : [value.slice(0, split), value.slice(split + 1)];
    const root = decodeBase64(rootText, "index root");
    if (root.length !== HASH_SIZE || !/^(?:0|[1-9][0-9]*)$/.test(since)) {
      throw encodingError(`checkpoint line ${JSON.stringify(line.slice(0, 120))} is not \`${INDEX_EXTENSION} <root> <index>\``);
    }
    return { root, chainedFrom: Number(since) };
  }
  return null;
}

/** The index key of the release chain of (product, version): SHA-256 of the domain and fields, NUL-separated. */
export function releaseKey(product, version) {
  const parts = [KEY_DOMAIN, "release", product, version].map((p) => new TextEncoder().encode(p));
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length + 1, -1));
  let at = 0;
  for (const [i, p] of parts.entries()) {
    if (i) joined[at++] = 0x00;
    joined.set(p, at);
    at += p.length;
  }
  return sha256(joined);
}

function decodeHead(bytes) {
  if (bytes.length !== HEAD_SIZE) throw encodingError(`an index head is ${HEAD_SIZE} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getBigUint64(0);
  if (count < 1n) throw encodingError("an index head counts at least one entry");
  return { count, lastIndex: view.getBigUint64(8), lastLeaf: bytes.slice(16), encoded: bytes };
}

/** Parse an encoded proof strictly (sparse_merkle.py decode_proof): exactly one encoding per proof. */
export function decodeIndexProof(data) {
  if (data.length < 4) throw encodingError(`an index proof is at least 4 bytes, got ${data.length}`);
  const [version, ending] = data;
  const depth = (data[2] << 8) | data[3];
  if (version !== PROOF_VERSION) throw encodingError(`index proof version ${version} is not known (only ${PROOF_VERSION})`);
  if (ending > ABSENT_OTHER) throw encodingError(`index proof ending ${ending} is not 0, 1 or 2`);
  if (depth > MAX_DEPTH) throw encodingError(`an index proof is at most ${MAX_DEPTH} deep, this one says ${depth}`);
  const endingSize = [HEAD_SIZE, 0, KEY_SIZE + HEAD_SIZE][ending];
  let pos = 4;
  const bitmapSize = (depth + 7) >> 3;
  const bitmap = data.slice(pos, pos + bitmapSize);
  pos += bitmap.length;
  if (bitmap.length !== bitmapSize) throw encodingError(`the index proof ends inside its bitmap (${data.length} bytes)`);
  const bit = (i) => (bitmap[i >> 3] & (0x80 >> (i & 7))) !== 0;
  for (let i = depth; i < bitmapSize * 8; i++) if (bit(i)) throw encodingError("an unused bit of the index proof's bitmap is set");
  let set = 0;
  for (let i = 0; i < depth; i++) set += bit(i) ? 1 : 0;
  const expected = pos + HASH_SIZE * set + endingSize;
  if (data.length !== expected) throw encodingError(`the index proof is ${data.length} bytes; its header and bitmap say ${expected}`);
  const siblings = [];
  for (let i = 0; i < depth; i++) {
    if (!bit(i)) {
      siblings.push(EMPTY);
      continue;
    }
    const sibling = data.slice(pos, pos + HASH_SIZE);
    if (bytesEqual(sibling, EMPTY)) throw encodingError(`the sibling at depth ${i + 1} is marked non-EMPTY but is EMPTY`);
    siblings.push(sibling);
    pos += HASH_SIZE;
  }
  if (ending === PRESENT) return { ending, siblings, head: decodeHead(data.slice(pos)) };
  if (ending === ABSENT_OTHER) {
    return { ending, siblings, otherKey: data.slice(pos, pos + KEY_SIZE), otherHead: decodeHead(data.slice(pos + KEY_SIZE)) };
  }
  return { ending, siblings };
}

const keyBit = (key, i) => (key[i >> 3] & (0x80 >> (i & 7))) !== 0; // bit i of the key, from the most significant
const leafHash = (key, head) => sha256(concat(Uint8Array.of(LEAF_PREFIX), key, head.encoded));

/**
 * The head of `key` a proof (bytes) shows against the index `root`, or null when it shows the key
 * absent (sparse_merkle.py verify_index_proof). Head: `{count, lastIndex, lastLeaf}` (BigInts and
 * bytes). A VerificationError for a malformed proof, an other-leaf ending off the key's path, or
 * a proof that leads to another root.
 */
export async function verifyIndexProof(root, key, proofBytes) {
  const proof = decodeIndexProof(proofBytes);
  const depth = proof.siblings.length;
  let digest;
  if (proof.ending === PRESENT) digest = await leafHash(key, proof.head);
  else if (proof.ending === ABSENT_EMPTY) digest = EMPTY;
  else {
    if (bytesEqual(proof.otherKey, key)) {
      throw new VerificationError(`the index proof for key ${toHex(key)} ends at a leaf of that same key`);
    }
    for (let i = 0; i < depth; i++) {
      if (keyBit(proof.otherKey, i) !== keyBit(key, i)) {
        throw new VerificationError(
          `the index proof for key ${toHex(key)} ends at depth ${depth} at the leaf of key ${toHex(proof.otherKey)}, ` +
            `which does not share the first ${depth} bits of the key`,
        );
      }
    }
    digest = await leafHash(proof.otherKey, proof.otherHead);
  }
  const node = Uint8Array.of(NODE_PREFIX);
  for (let d = depth; d > 0; d--) {
    const sibling = proof.siblings[d - 1];
    digest = await sha256(keyBit(key, d - 1) ? concat(node, sibling, digest) : concat(node, digest, sibling));
  }
  if (!bytesEqual(digest, root)) {
    throw new VerificationError(`the index proof for key ${toHex(key)} does not lead to the index root`, {
      expected: toHex(root),
      calculated: toHex(digest),
    });
  }
  return proof.ending === PRESENT ? proof.head : null;
}
