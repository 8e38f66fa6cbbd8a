// The person's signing key, made and kept in this browser (docs/console.md "Approving a release").
//
// WebCrypto makes an Ed25519 key pair whose private key is NOT extractable: no script, this one
// included, can read its bytes, and it never leaves the browser. IndexedDB keeps the CryptoKey
// objects themselves (structured clone), for this origin only. The public key is written in the
// C2SP signed-note verifier format the ledger registers (docs/formats.md "Keys"):
//   <name>+<key ID, 8 hex>+<base64(0x01 || 32-byte public key)>
// and envelopes are signed as DSSE v1 (PAE of the payload type and bytes), as `evledger` signs.

import { pae } from "../verify/dsse.js";
import { checkKeyName, computeKeyId, encodeBase64 } from "../verify/note.js";

const DATABASE = "evledger-console";
const STORE = "signing-keys";
const MINE = "mine"; // one signing key per browser profile and console origin
const ED25519 = { name: "Ed25519" };
const ED25519_TYPE = 0x01;

function request(idbRequest) {
  return new Promise((resolve, reject) => {
    idbRequest.onsuccess = () => resolve(idbRequest.result);
    idbRequest.onerror = () => reject(idbRequest.error);
  });
}

async function store(mode) {
  const opening = indexedDB.open(DATABASE, 1);
  opening.onupgradeneeded = () => opening.result.createObjectStore(STORE, { keyPath: "id" });
  const db = await request(opening);
  return db.transaction(STORE, mode).objectStore(STORE);
}

/** Whether this browser can make Ed25519 keys with WebCrypto. */
export function supported() {
  return Boolean(globalThis.crypto?.subtle && globalThis.indexedDB);
}

/** The signing key this browser holds, or null: `{name, keyid, verifier, privateKey, publicKey, created}`. */
export async function loadKey() {
  return (await request((await store("readonly")).get(MINE))) ?? null;
}

/**
 * Make a new signing key named `name` (a key name: no spaces, no `+`), keep it, and return it.
 * Refuses to replace a key this browser holds: `forgetKey` first.
 */
export async function createKey(name) {
  checkKeyName(name);
  if (await loadKey()) throw new Error("this browser already holds a signing key; delete it first");
  const pair = await crypto.subtle.generateKey(ED25519, false, ["sign", "verify"]);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const keyId = (await computeKeyId(name, publicKey)).toString(16).padStart(8, "0");
  const typed = new Uint8Array([ED25519_TYPE, ...publicKey]);
  const record = {
    id: MINE,
    name,
    keyid: `${name}+${keyId}`,
    verifier: `${name}+${keyId}+${encodeBase64(typed)}`,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    created: new Date().toISOString(),
  };
  await request((await store("readwrite")).add(record));
  return record;
}

/** Delete this browser's signing key. It cannot be recovered: its registration should be revoked. */
export async function forgetKey() {
  await request((await store("readwrite")).delete(MINE));
}

/**
 * A DSSE v1 envelope of `payload` (bytes) signed with `key`: the signature is made here, and
 * checked against the public key before it is returned.
 */
export async function signEnvelope(key, payloadType, payload) {
  const message = pae(payloadType, payload);
  const signature = new Uint8Array(await crypto.subtle.sign(ED25519, key.privateKey, message));
  if (!(await crypto.subtle.verify(ED25519, key.publicKey, signature, message))) {
    throw new Error("the signature made in this browser does not verify; nothing was sent");
  }
  return {
    payload: encodeBase64(payload),
    payloadType,
    signatures: [{ keyid: key.keyid, sig: encodeBase64(signature) }],
  };
}
