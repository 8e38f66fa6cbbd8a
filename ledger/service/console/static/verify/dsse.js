// DSSE v1 envelopes signed with Ed25519, verified through WebCrypto.
//
// Written from the DSSE specification (github.com/secure-systems-lab/dsse, protocol.md and
// envelope.md) and docs/formats.md "Envelopes":
//   {"payload": "<base64>", "payloadType": "<media type>", "signatures": [{"keyid": "...", "sig": "<base64>"}]}
// Each signature is the Ed25519 signature of PAE(payloadType, payload bytes).

import { VerificationError } from "./merkle.js";
import { parseVerifierKey, verifyEd25519 } from "./note.js";

const MAX_SIGNATURES = 16; // docs/formats.md "Envelopes": 1 to 16 signatures

/**
 * The pre-authentication encoding (DSSE protocol.md):
 * "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in bytes written in ASCII decimal,
 * the type encoded as UTF-8. `payload` is the decoded payload (a Uint8Array).
 */
export function pae(payloadType, payload) {
  const type = new TextEncoder().encode(payloadType);
  const head = new TextEncoder().encode(`DSSEv1 ${type.length} `);
  const middle = new TextEncoder().encode(` ${payload.length} `);
  const out = new Uint8Array(head.length + type.length + middle.length + payload.length);
  out.set(head);
  out.set(type, head.length);
  out.set(middle, head.length + type.length);
  out.set(payload, head.length + type.length + middle.length);
  return out;
}

const STD_ALPHABET = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_ALPHABET = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Decode base64 as DSSE allows it (envelope.md): the standard or the URL-safe alphabet
 * (RFC 4648 §4 or §5, not a mix of both), padding optional.
 */
export function decodeBase64Lenient(text, what = "value") {
  if (typeof text !== "string" || !(STD_ALPHABET.test(text) || URL_ALPHABET.test(text))) {
    throw new VerificationError(`${what} is not base64`);
  }
  const bare = text.replace(/=+$/, "").replaceAll("-", "+").replaceAll("_", "/");
  if (bare.length % 4 === 1) throw new VerificationError(`${what} is not base64`);
  return Uint8Array.from(atob(bare + "=".repeat((4 - (bare.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

function checkShape(envelope) {
  const ok =
    envelope !== null &&
    typeof envelope === "object" &&
    typeof envelope.payload === "string" &&
    typeof envelope.payloadType === "string" &&
    Array.isArray(envelope.signatures) &&
    envelope.signatures.every(
      (s) => s !== null && typeof s === "object" && typeof s.sig === "string" && ["string", "undefined"].includes(typeof s.keyid),
    );
  if (!ok) throw new VerificationError("not a DSSE envelope (payload, payloadType, signatures with sig and keyid)");
  if (!envelope.signatures.length) throw new VerificationError("envelope has no signatures");
  if (envelope.signatures.length > MAX_SIGNATURES) {
    throw new VerificationError(`envelope has over ${MAX_SIGNATURES} signatures`);
  }
}

/**
 * Verify a DSSE envelope's Ed25519 signatures against trusted keys.
 *
 * `keys` is one key or a list (each from parseVerifierKey, or a verifier key string). A signature
 * is matched to a key by its `keyid`, the keyid string `<name>+<8 hex>`; signatures naming no
 * trusted key are ignored (as DSSE allows: a log entry may carry other signers too), a signature
 * by a trusted key must verify, and at least one must. A signature without a `keyid` names no key
 * and is ignored: in the ledger every stored signature names its key (docs/formats.md "Envelopes").
 *
 * Returns `{payloadType, payload, verified}`: the decoded payload bytes and the keys that verified.
 */
export async function verifyEnvelope(envelope, keys) {
  checkShape(envelope);
  const trusted = await Promise.all(
    (Array.isArray(keys) ? keys : [keys]).map((k) => (typeof k === "string" ? parseVerifierKey(k) : k)),
  );
  const payload = decodeBase64Lenient(envelope.payload, "envelope payload");
  const message = pae(envelope.payloadType, payload);
  const verified = [];
  for (const signature of envelope.signatures) {
    const key = trusted.find((k) => k.keyid === signature.keyid);
    if (!key) continue;
    const raw = decodeBase64Lenient(signature.sig, `signature by ${signature.keyid}`);
    if (!(await verifyEd25519(key, message, raw))) {
      throw new VerificationError(`signature by ${key.keyid} does not verify`);
    }
    if (!verified.includes(key)) verified.push(key);
  }
  if (!verified.length) {
    throw new VerificationError("no signature by a trusted key", {
      expected: trusted.map((k) => k.keyid).join(", "),
      calculated: envelope.signatures.map((s) => s.keyid ?? "(no keyid)").join(", "),
    });
  }
  return { payloadType: envelope.payloadType, payload, verified };
}

/**
 * Verify an envelope's signatures as the ledger's verifiers do (ledger/core/dsse.py
 * verify_envelope): `lookup(keyid)` gives the key that may sign there (from parseVerifierKey), or
 * null when the key is unknown, not yet registered, revoked or expired (its signature is then
 * ignored). A signature without a keyid names no key. A signature by a key `lookup` gives must
 * verify; at least one must. `payload` is the decoded payload. Returns the keys that verified.
 * The error for "no signature by a key that may sign" carries `untrusted: true`.
 */
export async function verifySignatures(envelope, lookup, payload) {
  if (!envelope.signatures.length) throw new VerificationError("envelope has no signatures");
  if (envelope.signatures.length > MAX_SIGNATURES) {
    throw new VerificationError(`envelope has over ${MAX_SIGNATURES} signatures`);
  }
  const message = pae(envelope.payloadType, payload);
  const verified = [];
  for (const signature of envelope.signatures) {
    const keyid = signature.keyid ?? "";
    const key = lookup(keyid);
    if (!key) continue;
    const raw = decodeBase64Lenient(signature.sig, `signature by ${keyid}`);
    if (!(await verifyEd25519(key, message, raw))) {
      throw new VerificationError(`signature by ${key.keyid} does not verify`);
    }
    if (!verified.includes(key)) verified.push(key);
  }
  if (!verified.length) {
    const keyids = envelope.signatures.map((s) => s.keyid ?? "").join(", ");
    const error = new VerificationError(`no signature by a registered, unrevoked key (keyids: ${keyids})`);
    error.untrusted = true;
    throw error;
  }
  return verified;
}
