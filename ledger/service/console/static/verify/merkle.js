// RFC 9162 §2.1 Merkle tree hashing and proof verification, for the web console's offline verifier.
//
// Independent of the server and of the Python code: written from RFC 9162 (Certificate
// Transparency 2.0) §2.1, using only WebCrypto (`crypto.subtle.digest("SHA-256", ...)`).
// Tree sizes and indices may be Numbers (safe integers) or BigInts; the arithmetic is done in
// BigInt, since JavaScript's bit operators work on 32 bits only.
//
// Every failure throws a VerificationError; the functions never return `false`.

export const HASH_SIZE = 32;

/** A check did not hold, or its input was malformed. `expected`/`calculated` say what differed, when known. */
export class VerificationError extends Error {
  constructor(message, { expected, calculated } = {}) {
    super(message);
    this.name = "VerificationError";
    if (expected !== undefined) this.expected = expected;
    if (calculated !== undefined) this.calculated = calculated;
  }
}

// --- bytes and hex ---------------------------------------------------------------------------

/** Whether two byte arrays hold the same bytes. */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lowercase hex of a byte array. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A 32-byte hash from exactly 64 lowercase hex digits (docs/formats.md, Conventions); anything else throws. */
export function hashFromHex(text, what = "hash") {
  if (typeof text !== "string" || !/^[0-9a-f]{64}$/.test(text)) {
    throw new VerificationError(`${what} must be 64 lowercase hex digits`);
  }
  const out = new Uint8Array(HASH_SIZE);
  for (let i = 0; i < HASH_SIZE; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// --- §2.1.1 hashing --------------------------------------------------------------------------

/**
 * WebCrypto's SubtleCrypto. Browsers offer it only in a secure context (HTTPS, or localhost):
 * without it nothing can be verified, which is an Error, not a VerificationError.
 */
export function subtle() {
  const api = globalThis.crypto?.subtle;
  if (!api) throw new Error("WebCrypto is unavailable: serve the page over HTTPS (a secure context)");
  return api;
}

/** SHA-256 of `bytes` (a Uint8Array), as a Uint8Array. */
export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

/** The bytes of `parts`, one after another. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

/** RFC 9162 §2.1.1: the hash of a leaf, SHA-256(0x00 || leaf). */
export function leafHash(leaf) {
  return sha256(concat(LEAF_PREFIX, leaf));
}

/** RFC 9162 §2.1.1: the hash of an interior node, SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return sha256(concat(NODE_PREFIX, left, right));
}

// --- input checks ----------------------------------------------------------------------------

function toBig(value, what) {
  if (typeof value === "bigint" && value >= 0n) return value;
  if (Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  throw new VerificationError(`${what} ${value} is not a non-negative integer`);
}

function checkHash(value, what) {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new VerificationError(`${what} is ${value?.length ?? "not a byte array of"} bytes, not ${HASH_SIZE}`);
  }
}

function checkProof(proof, what) {
  if (!Array.isArray(proof)) throw new VerificationError(`${what} is not a list of hashes`);
  proof.forEach((h, i) => checkHash(h, `${what}[${i}]`));
}

const bitLength = (x) => (x === 0n ? 0 : x.toString(2).length);
const popCount = (x) => x.toString(2).replaceAll("0", "").length;
const isOdd = (x) => (x & 1n) === 1n;

/** How many hashes the audit path of leaf `index` in a tree of `size` holds (both BigInt, index < size). */
function inclusionLength(index, size) {
  // Below the point where the leaf's path and the path of the last leaf (size - 1) meet, every
  // level has a sibling; above it, only the levels where the leaf's subtree is a right child.
  const inner = bitLength(index ^ (size - 1n));
  return inner + popCount(index >> BigInt(inner));
}

// --- §2.1.3.2 inclusion ----------------------------------------------------------------------

/**
 * The root that leaf hash `leaf` at `index` and its audit path `proof` (hashes, bottom-up) imply
 * in a tree of `size` leaves: RFC 9162 §2.1.3.2 up to its final comparison.
 */
export async function rootFromInclusionProof(index, size, leaf, proof) {
  const fnStart = toBig(index, "leaf index");
  const n = toBig(size, "tree size");
  // Step 1: the index must be inside the tree.
  if (fnStart >= n) throw new VerificationError(`index ${fnStart} is outside a tree of size ${n}`);
  checkHash(leaf, "leaf hash");
  checkProof(proof, "proof");
  // A proof of the wrong length is refused outright (docs/formats.md, Merkle tree); the RFC's
  // loop below would refuse it too, with a less helpful reason.
  const needed = inclusionLength(fnStart, n);
  if (proof.length !== needed) {
    throw new VerificationError(`inclusion proof for index ${fnStart} in size ${n} has wrong length`, {
      expected: String(needed),
      calculated: String(proof.length),
    });
  }
  // Steps 2-4.
  let fn = fnStart;
  let sn = n - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new VerificationError("inclusion proof is longer than the path to the root");
    if (isOdd(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  // Step 5, first half: the path must have reached the top.
  if (sn !== 0n) throw new VerificationError("inclusion proof is shorter than the path to the root");
  return r;
}

/** RFC 9162 §2.1.3.2: `leaf` (a leaf hash) is leaf `index` of the tree of `size` whose root is `root`. */
export async function verifyInclusion(index, size, leaf, proof, root) {
  checkHash(root, "root");
  const calculated = await rootFromInclusionProof(index, size, leaf, proof);
  if (!bytesEqual(calculated, root)) {
    throw new VerificationError(`inclusion proof for index ${index} in size ${size} does not lead to the root`, {
      expected: toHex(root),
      calculated: toHex(calculated),
    });
  }
}

// --- §2.1.4.2 consistency --------------------------------------------------------------------

/**
 * RFC 9162 §2.1.4.2: the tree of `size2` leaves with root `root2` extends the tree of `size1`
 * leaves with root `root1`. As in the ledger's own verifiers and transparency-dev/merkle:
 * a proof from size 0 is refused (it proves nothing), and for equal sizes the proof must be
 * empty and the two roots equal.
 */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  const m = toBig(size1, "size1");
  const n = toBig(size2, "size2");
  if (m < 1n) throw new VerificationError(`a consistency proof from size ${m} proves nothing`);
  if (n < m) throw new VerificationError(`size2 (${n}) is smaller than size1 (${m})`);
  if (!Array.isArray(proof)) throw new VerificationError("proof is not a list of hashes");
  if (m === n) {
    if (proof.length) throw new VerificationError(`sizes are equal (${m}) but the proof is not empty`);
    if (!bytesEqual(root1, root2)) {
      throw new VerificationError(`sizes are equal (${m}) but the roots differ`, {
        expected: toHex(root1),
        calculated: toHex(root2),
      });
    }
    return;
  }
  // Step 1: an empty proof fails.
  if (proof.length === 0) throw new VerificationError(`empty consistency proof from ${m} to ${n}`);
  checkHash(root1, "root1");
  checkHash(root2, "root2");
  checkProof(proof, "proof");
  // Wrong lengths are refused before hashing (docs/formats.md, Merkle tree): the path of leaf
  // m - 1, less the levels inside the perfect subtree that ends the old tree, plus that
  // subtree's root unless it is the whole old tree (m a power of two).
  const shift = bitLength(m & -m) - 1;
  const powerOfTwo = m === 1n << BigInt(shift);
  const needed = inclusionLength(m - 1n, n) - shift + (powerOfTwo ? 0 : 1);
  if (proof.length !== needed) {
    throw new VerificationError(`consistency proof from ${m} to ${n} has wrong length`, {
      expected: String(needed),
      calculated: String(proof.length),
    });
  }
  // Step 2: when `first` is a power of two, its root is the first node of the path.
  const path = powerOfTwo ? [root1, ...proof] : proof;
  // Steps 3-4.
  let fn = m - 1n;
  let sn = n - 1n;
  while (isOdd(fn)) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // Steps 5-6.
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new VerificationError("consistency proof is longer than the path to the root");
    if (isOdd(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  // Step 7.
  if (sn !== 0n) throw new VerificationError("consistency proof is shorter than the path to the root");
  if (!bytesEqual(fr, root1)) {
    throw new VerificationError(`consistency proof does not lead to the root of size ${m}`, {
      expected: toHex(root1),
      calculated: toHex(fr),
    });
  }
  if (!bytesEqual(sr, root2)) {
    throw new VerificationError(`consistency proof does not lead to the root of size ${n}`, {
      expected: toHex(root2),
      calculated: toHex(sr),
    });
  }
}
