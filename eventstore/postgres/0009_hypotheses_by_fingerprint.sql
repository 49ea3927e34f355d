-- The latest hypotheses from identical evidence (what a new investigation reuses) without
-- sorting every earlier one: recurring incidents share their evidence's fingerprint.
DROP INDEX hypotheses_fingerprint_idx;
CREATE INDEX hypotheses_fingerprint_idx ON hypotheses (project_id, evidence_fingerprint, created_at DESC);
