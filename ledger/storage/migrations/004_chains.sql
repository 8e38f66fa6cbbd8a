-- Per-release and key-event hash chains (the sequencer's back-links, docs/formats.md#entries extra keys):
-- the position of each entry in its chain, so the sequencer finds a chain's head with one index read.
ALTER TABLE entries ADD COLUMN release_seq integer CHECK (release_seq >= 0);
ALTER TABLE key_events ADD COLUMN seq integer CHECK (seq >= 0);
CREATE UNIQUE INDEX entries_release_seq ON entries (product, version, release_seq) WHERE release_seq IS NOT NULL;
CREATE UNIQUE INDEX key_events_seq ON key_events (seq);
