// Log entries, the leaves of the tree (docs/formats.md "Entries"; ledger/core/entry.py).
//
// An entry is the UTF-8 bytes of one JSON object, keys sorted, no insignificant whitespace, no
// floats, at most 65,535 bytes:
//   {"envelope":{...DSSE...},"index":N,"prev":"<hex leaf hash of N-1>","time":"<RFC 3339 UTC ms Z>","v":1}
// with optional back-links `keys`, `release` and `artifacts`. Canonical means: the bytes are
// exactly the encoding of the values they decode to, which refuses unsorted or duplicate keys,
// whitespace, floats, nulls and unknown fields in one rule. `parseEntry` applies the same checks,
// in the same order, as the Python `parse_entry`.

import { VerificationError } from "./merkle.js";
import { canonicalJson, compareCodePoints, parseEntryTime, parseJson, utf8 } from "./json.js";
import { Shape, int, list, optional, str, struct } from "./schema.js";

export const MAX_ENTRY_SIZE = 65535;
export const ENTRY_VERSION = 1;
export const MAX_CHAINED_SUBJECTS = 64; // ledger/core/sparse_merkle.py: one artifact link per sha256 subject
export const GENESIS_PREV = "0".repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;

/** Whether a subject digest (`<algorithm>:<value>`, as stored) forms an artifact chain: sha256 only. */
export const isChainedDigest = (digest) => digest.startsWith("sha256:");

/** A 64-lowercase-hex hash string, or a VerificationError naming `what`. */
export function hex64(text, what) {
  if (typeof text !== "string" || !HEX64.test(text)) throw new VerificationError(`${what} must be 64 lowercase hex digits`);
  return text;
}

// --- the decoder's types (msgspec Structs with forbid_unknown_fields) ------------------------

const chainLink = (v, w) => struct(v, { index: [int, true], leaf_hash: [str, true] }, w);
const keyLink = (v, w) => struct(v, { seq: [int, true], prev: [optional(chainLink), false] }, w);
const releaseLink = (v, w) =>
  struct(v, { product: [str, true], version: [str, true], seq: [int, true], prev: [optional(chainLink), false] }, w);
const artifactLink = (v, w) => struct(v, { digest: [str, true], seq: [int, true], prev: [optional(chainLink), false] }, w);
const signature = (v, w) => struct(v, { sig: [str, true], keyid: [str, false] }, w, { keepUnknown: true });
const envelope = (v, w) =>
  struct(v, { payload: [str, true], payloadType: [str, true], signatures: [list(signature), true] }, w, { keepUnknown: true });
const entryShape = (v) =>
  struct(
    v,
    {
      envelope: [envelope, true],
      index: [int, true],
      prev: [str, true],
      time: [str, true],
      v: [int, true],
      keys: [optional(keyLink), false],
      release: [optional(releaseLink), false],
      artifacts: [optional(list(artifactLink)), false],
    },
    "$",
  );

/** The values as the ledger's encoder writes them: defaults of omit_defaults Structs left out. */
function encoded(entry) {
  const link = (l) => (l ? dropNull({ ...l, prev: l.prev ?? null }) : null);
  const out = {
    envelope: {
      payload: entry.envelope.payload,
      payloadType: entry.envelope.payloadType,
      signatures: entry.envelope.signatures.map((s) => ({ keyid: s.keyid ?? "", sig: s.sig })),
    },
    index: entry.index,
    prev: entry.prev,
    time: entry.time,
    v: entry.v,
    keys: link(entry.keys),
    release: link(entry.release),
    artifacts: entry.artifacts ? entry.artifacts.map(link) : null,
  };
  return dropNull(out);
}

const dropNull = (object) => Object.fromEntries(Object.entries(object).filter(([, v]) => v !== null && v !== undefined));

// --- checks ----------------------------------------------------------------------------------

function checkLink(name, index, seq, prev) {
  if (seq < 0 || (seq === 0) !== (prev == null)) {
    throw new VerificationError(`entry ${index}: ${name} link seq ${seq} and prev do not agree`);
  }
  if (prev != null) {
    hex64(prev.leaf_hash, `${name} link leaf_hash`);
    if (!(prev.index >= 0 && prev.index < index)) {
      throw new VerificationError(`entry ${index}: ${name} link points to entry ${prev.index}, not an earlier one`);
    }
  }
}

function checkArtifactLinks(index, links) {
  if (!(links.length > 0 && links.length <= MAX_CHAINED_SUBJECTS)) {
    throw new VerificationError(`entry ${index}: artifact links name 1 to ${MAX_CHAINED_SUBJECTS} digests, not ${links.length}`);
  }
  let previous = "";
  for (const link of links) {
    if (!isChainedDigest(link.digest)) {
      throw new VerificationError(`entry ${index}: artifact link digest ${JSON.stringify(link.digest)} is not a sha256 digest`);
    }
    if (compareCodePoints(link.digest, previous) <= 0) {
      throw new VerificationError(`entry ${index}: artifact links are not sorted by digest without repeats (${link.digest})`);
    }
    previous = link.digest;
    checkLink(`artifact ${link.digest}`, index, link.seq, link.prev);
  }
}

/**
 * Decode entry bytes, refusing anything that is not the canonical encoding of a v1 entry
 * (ledger/core/entry.py parse_entry). Returns the decoded fields: `envelope` ({payload,
 * payloadType, signatures: [{sig, keyid}]}), `index`, `prev`, `time`, `v`, and `keys`,
 * `release`, `artifacts` (null when absent), plus `at`, the time in microseconds (a BigInt).
 */
export function parseEntry(bytes) {
  if (bytes.length > MAX_ENTRY_SIZE) {
    throw new VerificationError(`entry is ${bytes.length} bytes, over the ${MAX_ENTRY_SIZE}-byte limit`);
  }
  let text, entry;
  try {
    text = utf8(bytes, "entry");
    entry = entryShape(parseJson(text));
  } catch (exc) {
    if (!(exc instanceof Shape || exc instanceof VerificationError)) throw exc;
    throw new VerificationError(`entry is not a valid entry object: ${exc.message}`);
  }
  entry.keys ??= null;
  entry.release ??= null;
  entry.artifacts ??= null;
  if (entry.v !== ENTRY_VERSION) throw new VerificationError(`entry version ${entry.v} is not ${ENTRY_VERSION}`);
  if (entry.index < 0) throw new VerificationError(`entry index ${entry.index} is negative`);
  hex64(entry.prev, "entry prev");
  entry.at = parseEntryTime(entry.time);
  for (const [name, link] of [["release", entry.release], ["keys", entry.keys]]) {
    if (link !== null) checkLink(name, entry.index, link.seq, link.prev);
  }
  if (entry.artifacts !== null) checkArtifactLinks(entry.index, entry.artifacts);
  if (canonicalJson(encoded(entry)) !== text) {
    throw new VerificationError(`entry ${entry.index} is not canonical JSON (sorted keys, no whitespace, no floats)`);
  }
  return entry;
}
