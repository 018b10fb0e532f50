-- migrate:up
-- A split-off order or a copy is named only by its original's journal entry
-- (object_id); processing any entry of it looks that entry up.
CREATE INDEX IF NOT EXISTS event_queue_workspace_origin
  ON event_queue(workspace_id, object_id)
  WHERE event_type IN (6, 17);

-- migrate:down
DROP INDEX IF EXISTS event_queue_workspace_origin;
