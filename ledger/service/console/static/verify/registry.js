// The key registry replayed from the log's admin records, and admission: whether an envelope was
// validly signed at the index it was recorded at (ledger/rules/registry.py, ledger/rules/admission.py).
//
// A key registered by entry i may sign entries i+1 onwards; a key revoked by entry j may not sign
// entries j+1 onwards; a key registered with an expiry may not sign an entry recorded at or after
// it (the entry's own time decides). A key registered for products may sign only for them, an
// approval in a role only by a key holding that role, an admin record only by an admin key, and a
// release seal only by a key holding a sealing role of the policy in force. Entry 0 is the ledger
// key's own registration, self-signed, with role admin.

import { verifySignatures } from "./dsse.js";
import { VerificationError } from "./merkle.js";
import { parseVerifierKey } from "./note.js";
import { DEFAULT_SEAL_ROLES, ROLE_ADMIN, inspect } from "./records.js";

const fail = (message) => {
  throw new VerificationError(message);
};

/** Keys by keyid string (in registration order), and the roles that may seal (null: cannot judge). */
export class KeyRegistry {
  constructor() {
    this.keys = new Map();
    this.sealRoles = DEFAULT_SEAL_ROLES;
  }

  /** An independent copy (changes to it leave this one as it is). */
  copy() {
    const twin = new KeyRegistry();
    for (const [keyid, key] of this.keys) twin.keys.set(keyid, { ...key });
    twin.sealRoles = this.sealRoles;
    return twin;
  }

  /** Apply the admin record of entry `index` (registry.py KeyRegistry.apply). */
  apply(index, record) {
    if (record.kind === "key.registered") this.register(index, record);
    else if (record.kind === "key.revoked") this.revoke(index, record);
    else if (record.kind === "policy.published") this.sealRoles = record.sealRoles;
  }

  register(index, record) {
    const { verifier } = record;
    if (this.keys.has(verifier.keyid)) fail(`key ${verifier.keyid} is already registered`);
    this.keys.set(verifier.keyid, {
      verifier,
      owner: record.owner,
      roles: new Set(record.roles),
      products: new Set(record.products),
      registeredAt: index,
      revokedAt: null,
      revokeReason: "",
      expires: record.expires, // microseconds since 1970, or null
    });
  }

  revoke(index, record) {
    const key = this.keys.get(record.keyid);
    if (!key) fail(`cannot revoke unknown key ${record.keyid}`);
    if (key.revokedAt !== null) fail(`key ${record.keyid} was already revoked at entry ${key.revokedAt}`);
    key.revokedAt = index;
    key.revokeReason = record.reason;
  }

  /** The verifier that may sign entry `index` recorded at `at` (µs) under `keyid`; null if it may not. */
  signingKey(keyid, index, at) {
    const key = this.keys.get(keyid);
    if (!key || key.registeredAt >= index) return null;
    if (key.revokedAt !== null && key.revokedAt < index) return null;
    if (key.expires !== null && at !== null && at >= key.expires) return null;
    return key.verifier;
  }

  /** Plain words for why none of `keyids` may sign entry `index` (registry.py explain_refusal). */
  explainRefusal(keyids, index, at) {
    const reasons = keyids.map((keyid) => {
      const key = this.keys.get(keyid);
      if (!key) return `${keyid} is not registered`;
      if (key.registeredAt >= index) return `${keyid} is registered only from entry ${key.registeredAt + 1}`;
      if (key.revokedAt !== null && key.revokedAt < index) return `${keyid} was revoked at entry ${key.revokedAt} (${key.revokeReason})`;
      if (key.expires !== null && at !== null && at >= key.expires) {
        const when = new Date(Number(key.expires / 1000n)).toISOString();
        return `${keyid} expired at ${when} (its registration, entry ${key.registeredAt}, set that expiry; register a new key for ${key.owner})`;
      }
      return `${keyid} did not produce a valid signature`;
    });
    return reasons.join("; ") || "no signatures";
  }

  allowsProduct(keyid, product) {
    const { products } = this.keys.get(keyid);
    return products.size === 0 || (product !== null && products.has(product));
  }
}

/** Admission at a recorded index (admission.py admit, `_authorise`): the keys that may be the entry's signers. */
export async function admit(envelope, registry, index, at) {
  const inspected = await inspect(envelope);
  let signers;
  try {
    signers = await verifySignatures(envelope, (keyid) => registry.signingKey(keyid, index, at), inspected.payload);
  } catch (exc) {
    if (exc instanceof VerificationError && exc.untrusted) {
      const keyids = envelope.signatures.map((s) => s.keyid || "(no keyid)");
      fail(`no signature by a key that may sign here: ${registry.explainRefusal(keyids, index, at)}`);
    }
    throw exc;
  }
  return authorise(inspected, registry, signers);
}

function authorise(inspected, registry, signers) {
  const roles = (s) => registry.keys.get(s.keyid).roles;
  if (inspected.admin !== null) {
    const admin = signers.find((s) => roles(s).has(ROLE_ADMIN));
    if (!admin) fail("admin records must be signed by a key with role 'admin'");
    return { ...inspected, signers: [admin, ...signers.filter((s) => s !== admin)] };
  }
  let allowed = signers.filter((s) => registry.allowsProduct(s.keyid, inspected.product));
  if (!allowed.length) {
    fail(
      inspected.product
        ? `no signing key is registered for product ${JSON.stringify(inspected.product)}`
        : "the statement names no product (predicate.release.product), and its signing key is limited to products",
    );
  }
  if (inspected.approvalRole !== null) {
    allowed = allowed.filter((s) => roles(s).has(inspected.approvalRole));
    if (!allowed.length) {
      fail(`an approval in role ${JSON.stringify(inspected.approvalRole)} must be signed by a key registered with that role`);
    }
  }
  if (inspected.seal !== null && registry.sealRoles !== null) {
    allowed = allowed.filter((s) => registry.sealRoles.some((role) => roles(s).has(role)));
    if (!allowed.length) {
      fail(
        `a release seal must be signed by a key with role ${[...registry.sealRoles].sort().join(" or ")} ` +
          "(the roles the policy in force names for sealing)",
      );
    }
  }
  return { ...inspected, signers: allowed };
}

/** Entry 0 (admission.py admit_genesis): the ledger key's own registration, self-signed, role admin. */
export async function admitGenesis(envelope) {
  const inspected = await inspect(envelope);
  const record = inspected.admin;
  if (record === null || record.kind !== "key.registered" || !record.roles.includes(ROLE_ADMIN)) {
    fail("entry 0 must register the ledger key with role 'admin'");
  }
  const key = await parseVerifierKey(record.key);
  const signers = await verifySignatures(envelope, (keyid) => (keyid === key.keyid ? key : null), inspected.payload);
  if (signers.length !== 1) fail("entry 0 must be signed by the key it registers");
  return { ...inspected, signers };
}
