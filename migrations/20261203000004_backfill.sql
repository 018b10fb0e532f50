-- migrate:up
-- Catching up after a journal gap: when the poller last read the journal, and
-- the progress of each backfill run.

ALTER TABLE baselinker_sync_state
  ADD COLUMN IF NOT EXISTS last_polled_at TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS backfills (
  workflow_id TEXT PRIMARY KEY,
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  since TIMESTAMPTZ NOT NULL,
  started_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  finished_at TIMESTAMPTZ,
  pages INTEGER NOT NULL DEFAULT 0,
  orders_synced INTEGER NOT NULL DEFAULT 0,
  orders_failed INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS backfills_workspace ON backfills(workspace_id, started_at);

-- migrate:down
DROP TABLE IF EXISTS backfills;
ALTER TABLE baselinker_sync_state DROP COLUMN IF EXISTS last_polled_at;
