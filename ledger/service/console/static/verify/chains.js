// The back-linked chains inside the log, as a dossier holds them (ledger/rules/chains.py and the
// chain checks of ledger/verify/dossier.py): the key-event chain, the release's own chain and its
// seal, and the artifact chains the entries' sha256 subjects join.
//
// Each chained entry counts its place (`seq`, from 0) and links to the chain's entry before it
// by index and leaf hash, so leaving one out of the middle breaks a link. A seal commits to the
// count and head of the release chain before it, and nothing may follow it.

import { VerificationError } from "./merkle.js";
import { isChainedDigest } from "./entry.js";
import { compareCodePoints } from "./json.js";

const chainError = (message, details) => new VerificationError(message, details);
const linkText = (link) => (link === null ? "None" : `(${link[0]}, '${link[1]}')`);

/**
 * The first member, in index order, that does not follow the one before it; null if none.
 * Members are `{index, leafHash, seq, prev}` (seq null when the entry carries no link of the
 * chain; prev `{index, leaf_hash}` or null). A whole chain runs from seq 0 with no link, each
 * member counting its own place and linking to the member before it.
 */
export function firstBreak(members) {
  let previous = null;
  for (const [position, member] of members.entries()) {
    const expected = previous === null ? null : [previous.index, previous.leafHash];
    const actual = member.prev == null ? null : [member.prev.index, member.prev.leaf_hash];
    const same = expected === null ? actual === null : actual !== null && actual[0] === expected[0] && actual[1] === expected[1];
    if (member.seq !== position || !same) return { position, member, expected, actual };
    previous = member;
  }
  return null;
}

/** A proven entry as a member of the chain `link` puts it on. */
export const member = (proven, link) => ({
  index: proven.index,
  leafHash: proven.leafHash,
  seq: link ? link.seq : null,
  prev: link ? (link.prev ?? null) : null,
});

/**
 * A recorded key event carries exactly the links the chains imply (chains.py Chains.check, for the
 * entries of a key-event replay): no release link, the key link after `head` (the key chain's head
 * before it, or null), no artifact links (an admin record has no subjects).
 */
export function checkKeyEventLinks(proven, head) {
  const { entry } = proven;
  const implied = head === null ? { seq: 0, prev: null } : { seq: head.seq + 1, prev: { index: head.index, leaf_hash: head.leafHash } };
  const show = (l) => (l ? `KeyLink(seq=${l.seq}, prev=${l.prev ? `ChainLink(index=${l.prev.index}, leaf_hash='${l.prev.leaf_hash}')` : "None"})` : "None");
  const carried = entry.keys;
  const same =
    carried !== null &&
    carried.seq === implied.seq &&
    (implied.prev === null ? carried.prev == null : carried.prev != null && carried.prev.index === implied.prev.index && carried.prev.leaf_hash === implied.prev.leaf_hash);
  if (entry.release !== null) {
    throw chainError(`entry ${entry.index}: release back-link is wrong`, { expected: "None", calculated: "a release link" });
  }
  if (!same) throw chainError(`entry ${entry.index}: key-event back-link is wrong`, { expected: show(implied), calculated: show(carried) });
  if (entry.artifacts !== null) {
    throw chainError(`entry ${entry.index}: list of artifact back-links is wrong`, { expected: "None", calculated: "artifact links" });
  }
  return { index: entry.index, leafHash: proven.leafHash, seq: implied.seq };
}

/** The release's chain runs from seq 0 with every back-link matching (dossier.py `_check_release_chain`). */
export function checkReleaseChain(release, product, version) {
  for (const proven of release) {
    const link = proven.entry.release;
    if (link.product !== product || link.version !== version) {
      throw chainError(`entry ${proven.index} belongs to release ${link.product} ${link.version}`);
    }
  }
  const broken = firstBreak(release.map((p) => member(p, p.entry.release)));
  if (broken === null) return;
  const { member: m, position } = broken;
  if (m.seq !== position) {
    const missing = (m.seq ?? 0) > position ? `event ${position} of the release is missing` : "out of order";
    throw chainError(`entry ${m.index} is event ${m.seq} of the release: ${missing}`);
  }
  throw chainError(`entry ${m.index} does not link to the release event before it`, {
    expected: linkText(broken.expected),
    calculated: linkText(broken.actual),
  });
}

/** The distinct sha256 digests among `subjects`, sorted: the artifact chains joined. */
export const chainedDigests = (subjects) => [...new Set(subjects.filter(isChainedDigest))].sort(compareCodePoints);

const sameList = (a, b) => (a === null || b === null ? a === b : a.length === b.length && a.every((x, i) => x === b[i]));

/**
 * Each entry carries the artifact links its subjects imply, consistent with the others held
 * (dossier.py `_check_artifact_links`). From `chainedFrom` on (null: from the first entry
 * carrying links) an entry carries one link per distinct sha256 subject digest, none before.
 * Entries are in index order; `admitted` maps an index to what admission read. Returns how many
 * entries carry links.
 */
export function checkArtifactLinks(entries, admitted, chainedFrom) {
  const held = new Map(entries.map((p) => [p.index, p]));
  const newest = new Map(); // digest -> [newest entry held on its chain, its seq]
  let carrying = 0;
  for (const proven of entries) {
    const links = proven.entry.artifacts;
    if (chainedFrom === null && links !== null) chainedFrom = proven.index;
    const digests = chainedDigests(admitted.get(proven.index).subjects);
    const implied = chainedFrom !== null && proven.index >= chainedFrom && digests.length ? digests : null;
    const carried = links === null ? null : links.map((l) => l.digest);
    if (!sameList(implied, carried)) {
      throw chainError(`entry ${proven.index} does not carry the artifact back-links its subjects imply`, {
        expected: (implied ?? ["none"]).join(", "),
        calculated: (carried ?? ["none"]).join(", "),
      });
    }
    if (links !== null) carrying++;
    for (const link of links ?? []) {
      const prev = link.prev ?? null;
      const named = prev !== null ? held.get(prev.index) : undefined;
      if (named !== undefined && !(named.entry.artifacts ?? []).some((a) => a.digest === link.digest)) {
        throw chainError(
          `entry ${proven.index} links to entry ${named.index} on the chain of ${link.digest}, which that entry is not on`,
        );
      }
      const before = newest.get(link.digest);
      if (before !== undefined) follows(proven, link.digest, link.seq, prev, before);
      newest.set(link.digest, [proven, link.seq]);
    }
  }
  return carrying;
}

function follows(proven, digest, seq, prev, [earlier, earlierSeq]) {
  const linked = prev === null ? null : [prev.index, prev.leaf_hash];
  const right = linked !== null && linked[0] === earlier.index && linked[1] === earlier.leafHash;
  const consistent =
    seq > earlierSeq && linked !== null && linked[0] >= earlier.index && right === (seq === earlierSeq + 1) && (linked[0] !== earlier.index || right);
  if (!consistent) {
    throw chainError(`entry ${proven.index} does not follow entry ${earlier.index} on the chain of ${digest}`, {
      expected: `a place after ${earlierSeq}, linking to entry ${earlier.index} or a later one`,
      calculated: `place ${seq}, linking to ${linked ? linked[0] : "nothing"}`,
    });
  }
}

/**
 * What the checked release chain proves (dossier.py `_completeness`): `{sealedAt, last, length}`.
 * A seal must be the chain's head and commit to exactly the chain before it: its count its own
 * place, its head the leaf hash of the event before it.
 */
export function completeness(release, admitted) {
  const seals = release.filter((p) => admitted.get(p.index).seal !== null);
  if (seals.some((p) => p !== release.at(-1))) {
    throw chainError(`the release seal at entry ${seals[0].index} is followed by more release events`);
  }
  const lastProven = release.at(-1);
  const last = lastProven ? { index: lastProven.index, seq: release.length - 1, time: lastProven.entry.time } : null;
  if (!seals.length) return { sealedAt: null, last, length: release.length };
  const before = release.length > 1 ? release.at(-2) : null;
  const chain = [release.length - 1, before ? before.leafHash : ""];
  const claimed = admitted.get(lastProven.index).seal;
  if (claimed[0] !== chain[0] || claimed[1] !== chain[1]) {
    throw chainError(`the release seal at entry ${lastProven.index} does not commit to the release chain before it`, {
      expected: `count ${chain[0]}, head ${chain[1] || "-"}`,
      calculated: `count ${claimed[0]}, head ${claimed[1]}`,
    });
  }
  return { sealedAt: lastProven.index, last, length: release.length };
}
