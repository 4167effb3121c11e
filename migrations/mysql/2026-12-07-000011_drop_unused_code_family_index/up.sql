-- No query reads authorization_codes by family_id (a code replay revokes the family's tokens,
-- through ix_tokens_family_id), so the index only cost a B-tree insert per code (issue 15;
-- BENCHMARKS.md, session 16).
ALTER TABLE authorization_codes DROP INDEX ix_codes_family_id;
