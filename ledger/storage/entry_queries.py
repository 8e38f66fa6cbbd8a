"""SQL of the evidence index (issue #4): release timelines, artifacts, search and kind lookups.

The queries of `postgres_index.PostgresEvidenceIndex`. Every one is served by an
index (001, 004 and 005 migrations); the request's values are always bind
parameters, never SQL text. The queries that return entries select the log
store's column list (`postgres.SELECT_ENTRIES`), whose rows `postgres.entry_row` reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.storage.postgres import SELECT_ENTRIES

# ledger.records.predicates.BUILD, spelled as in migration 005's partial index (a test checks);
# both build kinds' subjects count as what a release built.
BUILD_KIND = "https://evledger.dev/build/v1"
SLSA_PROVENANCE_KIND = "https://slsa.dev/provenance/v1"  # ledger.records.predicates.SLSA_PROVENANCE
SLSA_PROVENANCE_V02_KIND = "https://slsa.dev/provenance/v0.2"  # ledger.records.predicates.SLSA_PROVENANCE_V02

# A search combining filters reads at most MAX_WINDOWS windows of SCAN_WINDOW indices per call:
# the planner orders by the index it judges most selective and filters on the others, and where
# they never meet that reads every entry in the range (measured at 1M entries, 16k entries read
# in 15 to 60 ms on the loaded 2-core machine, 65k in 70 to 250 ms).
SCAN_WINDOW = 1 << 14
MAX_WINDOWS = 4

# (product, version, idx): the chain's entries, already in index order.
RELEASE_CHAIN_SQL = (
    f"{SELECT_ENTRIES} WHERE product = $1 AND version = $2 AND release_seq IS NOT NULL ORDER BY idx"
)

# In-toto evidence on no chain whose subjects (GIN) include a digest the given build entries
# produced: their subjects, and for our build type the artifacts its predicate lists (migration
# 005's function). Run after RELEASE_CHAIN_SQL on the same connection, with the chain's builds.
BUILD_KINDS = (BUILD_KIND, SLSA_PROVENANCE_KIND, SLSA_PROVENANCE_V02_KIND)
UNCHAINED_ABOUT_BUILDS_SQL = f"""{SELECT_ENTRIES}
    WHERE release_seq IS NULL AND payload_type = 'application/vnd.in-toto+json' AND subjects && (
        SELECT coalesce(array_agg(DISTINCT d), '{{}}') FROM entries AS b, unnest(b.subjects || CASE
            WHEN b.kind = '{BUILD_KIND}' THEN evledger_build_artifacts(b.data) ELSE '{{}}' END) AS d
        WHERE b.idx = ANY($1::bigint[]))
    ORDER BY idx"""  # noqa: S608 - constant column list and predicate type

# Two GIN indexes: subjects, and the build-artifact expression index, whose expression and partial
# predicate the second arm spells exactly (with the kind as a literal, so generic plans use it too).
ARTIFACT_SQL = f"""{SELECT_ENTRIES} WHERE idx IN (
        SELECT idx FROM entries WHERE subjects @> $1::text[] AND idx >= $2
        UNION
        SELECT idx FROM entries WHERE kind = '{BUILD_KIND}' AND evledger_build_artifacts(data) @> $1::text[]
            AND idx >= $2)
    ORDER BY idx LIMIT $3"""  # noqa: S608 - constant column list and predicate type

# Entry times never go backwards in index order (ledger.append.batch.plan_batch), so the first entry at
# or after a time is the smallest index among those of the earliest matching time: one range scan
# of the integrated_at index over that time's entries (one batch's at most, as a rule).
FIRST_INDEX_AT_OR_AFTER_SQL = (
    "SELECT idx FROM entries WHERE integrated_at >= $1 ORDER BY integrated_at, idx LIMIT 1"
)

# One (kind, idx) index range per kind, indices only; and one backward step of it.
INDICES_OF_KINDS_SQL = "SELECT idx FROM entries WHERE kind = ANY($1::text[]) AND idx < $2 ORDER BY idx"
LATEST_OF_KIND_SQL = f"{SELECT_ENTRIES} WHERE kind = $1 AND idx < $2 ORDER BY idx DESC LIMIT 1"

# The entries of one kind on the chains of given releases ($2 products, $3 versions, paired),
# planned for the values: the (kind, idx) index when that kind is rare in the log, else one descent
# of the release-chain index per release (its chain, kind filtered); never a scan of the log.
RELEASE_ENTRIES_OF_KIND_SQL = f"""{SELECT_ENTRIES} WHERE kind = $1 AND release_seq IS NOT NULL
    AND (product, version) IN (SELECT * FROM unnest($2::text[], $3::text[]))
    ORDER BY idx"""  # noqa: S608 - constant column list

# Plan every search and artifact statement for its values: a generic plan of a prepared statement
# (PostgreSQL switches to one after five executions) judges `kind = $3` by the average kind and
# may walk the primary key with a filter, reading the whole log for a rare value; measured at 1M
# entries: 0.9 s for an unknown product, 1.5 s for kind=build, against < 1 ms planned for the value.
# SET LOCAL, inside the search's own transaction: the pool releases connections without a reset
# (`postgres._keep_session`), and a session-level SET would hold for every later call on the
# connection, append transactions included.
CUSTOM_PLANS_SQL = "SET LOCAL plan_cache_mode = force_custom_plan"


def is_combination(
    *, kinds: Sequence[str], product: str | None, version: str | None, signers: Sequence[str]
) -> bool:
    """Whether a search combines filters no one index orders by (then its idx range must be bounded).

    A release (product and version) is one index whatever else is asked; kind,
    signer and product alone each have theirs (several kinds or signers: one scan each, merged).
    """
    return version is None and (bool(kinds) + (product is not None) + bool(signers)) >= 2


def search_sql(  # noqa: PLR0913 - the filters of one search, each optional
    *,
    start: int,
    stop: int | None,
    kinds: Sequence[str],
    product: str | None,
    version: str | None,
    signers: Sequence[str],
    limit: int,
) -> tuple[str, list[object]]:
    """The search query and its arguments: entries in [start, stop) matching every filter, index order.

    Preconditions: `limit` >= 1; `version` only with `product`; run in a
    transaction under CUSTOM_PLANS_SQL; for a combination (`is_combination`) a
    `stop` not far from `start`, since the scan may visit every entry between
    them. Otherwise, planned for its values, it is one ordered scan of the
    filter's own index: (product, version, idx), (signer_keyid, idx), (kind, idx),
    (product, idx) or the primary key. Several kinds (or signers: an owner's keys) are one
    ordered, limited scan per kind and signer, merged, because `kind = ANY(...)` would sort
    every entry of those kinds. `kinds` and `signers` empty: any.
    """
    args: list[object] = [start, limit]
    conditions = ["idx >= $1"]
    for condition, value in (("idx <", stop), ("product =", product), ("version =", version)):
        if value is not None:
            args.append(value)
            conditions.append(f"{condition} ${len(args)}")
    where = " AND ".join(conditions)
    arms = []
    any_value: list[str | None] = [None]
    for kind in [*kinds] or any_value:
        for signer in [*signers] or any_value:
            arm = where
            for column, value in (("kind", kind), ("signer_keyid", signer)):
                if value is not None:
                    args.append(value)
                    arm += f" AND {column} = ${len(args)}"
            arms.append(f"{SELECT_ENTRIES} WHERE {arm} ORDER BY idx LIMIT $2")
    if len(arms) == 1:
        return arms[0], args
    return f"{' UNION ALL '.join(f'({arm})' for arm in arms)} ORDER BY idx LIMIT $2", args


def release_list_sql(*, product: bool, after: bool) -> str:
    """The releases in (product, version) order, each with its chain's first and newest entry (issue #12).

    Arguments: `$1` the number of releases; with `after`, `$2, $3` the (product, version) to start
    after; with `product`, the product (`$2` without `after`, else `$4`). A skip scan of the
    partial unique index `entries_release_seq` (product, version, release_seq), migration 004: one
    index descent per release found, whatever its number of entries, then two more for its first
    (release_seq 0) and newest entries. Never more than `$1` releases are read.
    """
    base = ["release_seq IS NOT NULL"]
    if product:
        base.append(f"product = ${4 if after else 2}")
    first = " AND ".join([*base, "(product, version) > ($2, $3)"] if after else base)
    step = " AND ".join([*base, "(product, version) > (r.product, r.version)"])
    chain = "FROM entries WHERE product = r.product AND version = r.version AND release_seq IS NOT NULL"
    return f"""WITH RECURSIVE releases(product, version) AS (
        (SELECT product, version FROM entries WHERE {first} ORDER BY product, version LIMIT 1)
        UNION ALL
        SELECT n.product, n.version FROM releases AS r CROSS JOIN LATERAL (
            SELECT product, version FROM entries WHERE {step}
            ORDER BY product, version LIMIT 1) AS n)
    SELECT r.product, r.version, f.idx, f.integrated_at, h.idx, h.integrated_at, h.release_seq, h.kind
    FROM (SELECT product, version FROM releases LIMIT $1) AS r
    CROSS JOIN LATERAL (SELECT idx, integrated_at {chain} ORDER BY release_seq LIMIT 1) AS f
    CROSS JOIN LATERAL (
        SELECT idx, integrated_at, release_seq, kind {chain} ORDER BY release_seq DESC LIMIT 1) AS h
    ORDER BY r.product, r.version"""  # noqa: S608 - constant columns; values are bind parameters
