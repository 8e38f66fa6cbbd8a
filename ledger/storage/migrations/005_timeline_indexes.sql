-- Indexes for the release timeline, artifact and search routes (docs/http-api.md, docs/architecture.md#storage; issue #4).

-- Search by product alone, in index order: (product, version, idx) orders by idx only within
-- one version, so a product-wide page would have to sort every entry of the product.
CREATE INDEX entries_product ON entries (product, idx) WHERE product IS NOT NULL;

-- The artifact digests a build statement lists in `predicate.artifacts[].digest`, which need not
-- be among its subjects. Read from the entry bytes (entry JSON → DSSE payload, standard or
-- URL-safe base64 with or without padding → in-toto statement). Never raises: an entry this
-- cannot read yields no digests rather than refusing the append that writes it.
CREATE FUNCTION evledger_build_artifacts(data bytea) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    payload   text;
    statement jsonb;
    found     text[];
BEGIN
    payload := translate(convert_from(data, 'UTF8')::jsonb -> 'envelope' ->> 'payload', '-_', '+/');
    payload := rtrim(payload, '=');
    payload := rpad(payload, ((length(payload) + 3) / 4) * 4, '=');
    statement := convert_from(decode(payload, 'base64'), 'UTF8')::jsonb;
    IF jsonb_typeof(statement -> 'predicate' -> 'artifacts') <> 'array' THEN
        RETURN '{}';
    END IF;
    SELECT coalesce(array_agg(DISTINCT lower(a ->> 'digest')), '{}') INTO found
    FROM jsonb_array_elements(statement -> 'predicate' -> 'artifacts') AS a
    WHERE jsonb_typeof(a) = 'object' AND jsonb_typeof(a -> 'digest') = 'string';
    RETURN found;
EXCEPTION WHEN OTHERS THEN
    RETURN '{}';
END;
$$;

-- Only build entries are read (a partial index), so other appends never pay for the function.
CREATE INDEX entries_build_artifacts ON entries USING gin (evledger_build_artifacts(data))
    WITH (fastupdate = off) WHERE kind = 'https://evledger.dev/build/v1';

-- GIN's fast-update pending list is an unordered list every search reads in full until a
-- VACUUM merges it (or it reaches gin_pending_list_limit, 4 MB by default). On an append-only
-- log that is always several MB, which costs each timeline and artifact lookup milliseconds
-- (measured: 6 ms at 20k fresh entries). Appends pay instead, a few microseconds per subject.
ALTER INDEX entries_subjects SET (fastupdate = off);
SELECT gin_clean_pending_list('entries_subjects'::regclass);
