-- Each incident's place in the log: the position of its Detected event. An investigator keeps
-- a project's recent incidents in memory and asks only for those added after the highest
-- position it has seen (copilot.investigation.recent).
ALTER TABLE incidents ADD COLUMN position bigint;
UPDATE incidents SET position = e.position FROM incident_events e
    WHERE e.incident_id = incidents.id AND e.type = 'Incident.Detected';
CREATE INDEX incidents_project_position_idx ON incidents (project_id, position);

-- The latest hypotheses from identical evidence (what a new investigation reuses) without
-- sorting every earlier one: recurring incidents share their evidence's fingerprint.
DROP INDEX hypotheses_fingerprint_idx;
CREATE INDEX hypotheses_fingerprint_idx ON hypotheses (project_id, evidence_fingerprint, created_at DESC);
