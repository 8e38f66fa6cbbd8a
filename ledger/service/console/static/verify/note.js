// C2SP signed notes and tlog checkpoints, with Ed25519 verification through WebCrypto.
//
// Written from the specifications, not from the ledger's code:
//   c2sp.org/signed-note     https://github.com/C2SP/C2SP/blob/main/signed-note.md
//   c2sp.org/tlog-checkpoint https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md
// and the ledger's stricter reading of them in docs/formats.md ("Keys", "Checkpoints"):
// canonical base64, at most 100 signature lines, key names of at most 256 characters.

import { HASH_SIZE, VerificationError, sha256, subtle, toHex } from "./merkle.js";

const SIGNATURE_PREFIX = "\u2014 "; // em dash, space (signed-note §Format)
const MAX_SIGNATURES = 100; // the spec asks for a limit of at least 16 (signed-note §Format)
const MAX_KEY_NAME = 256;
const ED25519_TYPE = 0x01; // signed-note §Signature types
const ED25519_PUBLIC_KEY_SIZE = 32;
const ED25519_SIGNATURE_SIZE = 64;

// --- base64, as docs/formats.md "Conventions" reads it ---------------------------------------

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding (RFC 4648 §4). */
export function encodeBase64(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * Decode canonical standard base64 (RFC 4648 §4): standard alphabet, padded, unused bits zero,
 * so each value has exactly one spelling. Anything else throws a VerificationError.
 */
export function decodeBase64(text, what = "value") {
  if (typeof text !== "string" || !STD_BASE64.test(text)) {
    throw new VerificationError(`${what} is not canonical standard padded base64`);
  }
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (encodeBase64(bytes) !== text) {
    throw new VerificationError(`${what} is not canonical standard padded base64`);
  }
  return bytes;
}

// --- keys (signed-note §Signatures, docs/formats.md "Keys") -----------------------------------

/** A key name: non-empty, no Unicode space and no `+` (signed-note §Format); printable, at most 256 characters. */
export function checkKeyName(name) {
  if (typeof name !== "string" || !name || /[\p{C}\p{Z}\s+]/u.test(name)) {
    throw new VerificationError(`key name ${JSON.stringify(name)} must be non-empty, printable, without spaces or '+'`);
  }
  if ([...name].length > MAX_KEY_NAME) {
    throw new VerificationError(`key name is longer than ${MAX_KEY_NAME} characters`);
  }
  return name;
}

/** The 32-bit key ID: SHA-256(name || 0x0A || type || public key)[:4], big-endian (signed-note §Signatures). */
export async function computeKeyId(name, publicKey, type = ED25519_TYPE) {
  const nameBytes = new TextEncoder().encode(name);
  const input = new Uint8Array(nameBytes.length + 2 + publicKey.length);
  input.set(nameBytes);
  input[nameBytes.length] = 0x0a;
  input[nameBytes.length + 1] = type;
  input.set(publicKey, nameBytes.length + 2);
  const digest = await sha256(input);
  return new DataView(digest.buffer).getUint32(0, false);
}

const hex8 = (keyId) => keyId.toString(16).padStart(8, "0");

/**
 * Parse a verifier key `<name>+<key ID, 8 hex>+<base64(0x01 || 32-byte Ed25519 key)>`.
 * The base64 part may itself hold `+`: split on the first two only. The algorithm byte,
 * the key's length and the key ID (recomputed from the name and key) must all be right.
 *
 * Returns `{name, keyId, keyid, publicKey, cryptoKey}`: `keyId` the 32-bit number, `keyid`
 * the keyid string `<name>+<8 hex>` that DSSE signatures name.
 */
export async function parseVerifierKey(text) {
  if (typeof text !== "string") throw new VerificationError("a verifier key must be a string");
  const trimmed = text.trim();
  const first = trimmed.indexOf("+");
  const second = first < 0 ? -1 : trimmed.indexOf("+", first + 1);
  if (second < 0) throw new VerificationError("verifier key must look like <name>+<keyid>+<base64 key>");
  const name = checkKeyName(trimmed.slice(0, first));
  const idHex = trimmed.slice(first + 1, second);
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw new VerificationError(`verifier key ID ${idHex} is not 8 lowercase hex digits`);
  const material = decodeBase64(trimmed.slice(second + 1), "verifier key material");
  if (material.length !== 1 + ED25519_PUBLIC_KEY_SIZE || material[0] !== ED25519_TYPE) {
    throw new VerificationError("verifier key is not an Ed25519 key (algorithm byte 0x01 + 32 bytes)");
  }
  const publicKey = material.slice(1);
  const keyId = await computeKeyId(name, publicKey);
  if (hex8(keyId) !== idHex) {
    throw new VerificationError(`verifier key ID ${idHex} does not match its name and key`, {
      expected: hex8(keyId),
      calculated: idHex,
    });
  }
  return { name, keyId, keyid: `${name}+${idHex}`, publicKey, cryptoKey: await importEd25519(publicKey) };
}

async function importEd25519(publicKey) {
  try {
    return await subtle().importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (exc) {
    // Not a verification failure: this browser cannot check Ed25519 at all.
    throw new Error(`this browser's WebCrypto cannot import an Ed25519 key: ${exc.message}`, { cause: exc });
  }
}

/** Whether `signature` is a valid Ed25519 signature (RFC 8032) of `message` under `key` (from parseVerifierKey). */
export async function verifyEd25519(key, message, signature) {
  if (signature.length !== ED25519_SIGNATURE_SIZE) return false;
  return subtle().verify({ name: "Ed25519" }, key.cryptoKey, signature, message);
}

// --- signed notes (signed-note §Format, §Signatures) ------------------------------------------

const CONTROL_EXCEPT_NEWLINE = /[\x00-\x09\x0b-\x1f]/;

function noteString(note) {
  if (typeof note === "string") {
    if (note.isWellFormed && !note.isWellFormed()) throw new VerificationError("signed note is not valid Unicode");
    return note;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(note);
  } catch {
    throw new VerificationError("signed note is not valid UTF-8");
  }
}

function parseSignatureLine(line) {
  const malformed = () => new VerificationError(`malformed signature line ${JSON.stringify(line.slice(0, 60))}`);
  if (!line.startsWith(SIGNATURE_PREFIX)) throw malformed();
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(" ");
  if (space < 0 || rest.indexOf(" ", space + 1) >= 0) throw malformed();
  const name = checkKeyName(rest.slice(0, space));
  const raw = decodeBase64(rest.slice(space + 1), `signature by ${name}`);
  if (raw.length < 4) throw new VerificationError(`signature by ${name} is shorter than its key ID`);
  // The first four bytes are the key ID, big-endian; the rest is the signature.
  return { name, keyId: new DataView(raw.buffer).getUint32(0, false), signature: raw.slice(4) };
}

/**
 * Split a signed note (string or UTF-8 bytes) into its text and signature lines, verifying nothing.
 * The text ends in a newline and is separated from the signatures by the note's last empty line.
 * Returns `{text, signatures: [{name, keyId, signature}]}`.
 */
export function parseNote(note) {
  const whole = noteString(note);
  if (CONTROL_EXCEPT_NEWLINE.test(whole)) {
    throw new VerificationError("signed note contains control characters other than newline");
  }
  const split = whole.lastIndexOf("\n\n");
  if (split < 0) throw new VerificationError("signed note has no blank line before its signatures");
  const text = whole.slice(0, split + 1);
  const block = whole.slice(split + 2);
  if (!block.endsWith("\n")) throw new VerificationError("signed note's signature block must end with a newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new VerificationError(`signed note has over ${MAX_SIGNATURES} signatures`);
  return { text, signatures: lines.map(parseSignatureLine) };
}

/**
 * Parse a signed note and verify it against trusted keys (signed-note §Signatures): a signature
 * by an unknown key (name and key ID not both matching a trusted key) is ignored; one by a
 * trusted key must verify, or the whole note is refused; at least one must verify.
 * `verifiers` is a key from parseVerifierKey, or a list of them. Returns the parsed note with
 * `verified`, the trusted keys whose signatures verified.
 */
export async function openNote(note, verifiers) {
  const keys = Array.isArray(verifiers) ? verifiers : [verifiers];
  const parsed = parseNote(note);
  const message = new TextEncoder().encode(parsed.text);
  const verified = [];
  for (const sig of parsed.signatures) {
    const key = keys.find((k) => k.name === sig.name && k.keyId === sig.keyId);
    if (!key) continue;
    if (!(await verifyEd25519(key, message, sig.signature))) {
      throw new VerificationError(`note signature by known key ${key.keyid} does not verify`);
    }
    if (!verified.includes(key)) verified.push(key);
  }
  if (!verified.length) {
    throw new VerificationError("note is not signed by any trusted key", {
      expected: keys.map((k) => k.keyid).join(", "),
      calculated: parsed.signatures.map((s) => `${s.name}+${hex8(s.keyId)}`).join(", "),
    });
  }
  return { ...parsed, verified };
}

// --- checkpoints (tlog-checkpoint §Note text) -------------------------------------------------

/**
 * Parse checkpoint note text: origin, tree size (decimal, no leading zeros), base64 root hash,
 * then optional non-empty extension lines, each line ending in a newline.
 * Returns `{origin, size, rootHash, extensions}`; `size` is a Number (a BigInt past 2^53 - 1).
 */
export function parseCheckpoint(text) {
  if (typeof text !== "string" || !text.endsWith("\n")) {
    throw new VerificationError("checkpoint text must end with a newline");
  }
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new VerificationError(`checkpoint text has ${lines.length} lines, needs at least 3`);
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) throw new VerificationError("checkpoint origin is empty");
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeText)) {
    throw new VerificationError(`checkpoint size ${JSON.stringify(sizeText)} is not a canonical decimal`);
  }
  const rootHash = decodeBase64(rootText, "checkpoint root hash");
  if (rootHash.length !== HASH_SIZE) {
    throw new VerificationError(`checkpoint root hash is ${rootHash.length} bytes, not ${HASH_SIZE}`);
  }
  if (extensions.some((line) => !line)) throw new VerificationError("checkpoint extension lines must not be empty");
  const big = BigInt(sizeText);
  const size = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  return { origin, size, rootHash, extensions };
}

/**
 * Verify a signed checkpoint with the log's key (a key from parseVerifierKey, or its string) and
 * parse it. With `origin`, a checkpoint for another log is refused even when its signature
 * verifies. Returns the parsed checkpoint with `text`, the exact signed note text.
 */
export async function openCheckpoint(note, verifier, { origin } = {}) {
  const key = typeof verifier === "string" ? await parseVerifierKey(verifier) : verifier;
  const opened = await openNote(note, key);
  const checkpoint = parseCheckpoint(opened.text);
  if (origin !== undefined && checkpoint.origin !== origin) {
    throw new VerificationError("checkpoint is for another log", { expected: origin, calculated: checkpoint.origin });
  }
  return { ...checkpoint, text: opened.text, rootHex: toHex(checkpoint.rootHash) };
}
