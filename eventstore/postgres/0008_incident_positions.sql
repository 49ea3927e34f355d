-- Each incident's place in the log: the position of its Detected event. An investigator keeps
-- a project's recent incidents in memory and asks only for those added after the highest
-- position it has seen (copilot.investigation.recent).
ALTER TABLE incidents ADD COLUMN position bigint;
UPDATE incidents SET position = e.position FROM incident_events e
    WHERE e.incident_id = incidents.id AND e.type = 'Incident.Detected';
CREATE INDEX incidents_project_position_idx ON incidents (project_id, position);
