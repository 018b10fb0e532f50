-- migrate:up
-- What the order sync adds to the platform's tables: natural keys, raw contact
-- values beside normalised ones, the ledger's story, and caches it relies on.

ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS slug TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS workspaces_slug_key ON workspaces(slug);

ALTER TABLE clients
  ADD COLUMN IF NOT EXISTS identity_key TEXT,
  ADD COLUMN IF NOT EXISTS tax_id_kind TEXT,
  ADD COLUMN IF NOT EXISTS email_raw TEXT,
  ADD COLUMN IF NOT EXISTS phone_raw TEXT,
  ADD COLUMN IF NOT EXISTS tax_id_raw TEXT,
  ADD COLUMN IF NOT EXISTS first_order_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS last_order_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ DEFAULT NOW();
CREATE UNIQUE INDEX IF NOT EXISTS clients_workspace_identity_key
  ON clients(workspace_id, identity_key);

ALTER TABLE products
  ADD COLUMN IF NOT EXISTS product_key TEXT,
  ADD COLUMN IF NOT EXISTS bl_product_id TEXT,
  ADD COLUMN IF NOT EXISTS ean TEXT,
  ADD COLUMN IF NOT EXISTS last_price NUMERIC(12, 2),
  ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ DEFAULT NOW();
CREATE UNIQUE INDEX IF NOT EXISTS products_workspace_product_key
  ON products(workspace_id, product_key);

ALTER TABLE orders
  ADD COLUMN IF NOT EXISTS status_id INTEGER,
  ADD COLUMN IF NOT EXISTS confirmed BOOLEAN,
  ADD COLUMN IF NOT EXISTS date_confirmed TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS date_in_status TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS currency TEXT,
  ADD COLUMN IF NOT EXISTS payment_done NUMERIC(12, 2),
  ADD COLUMN IF NOT EXISTS delivery_price NUMERIC(12, 2),
  ADD COLUMN IF NOT EXISTS buyer_email_raw TEXT,
  ADD COLUMN IF NOT EXISTS buyer_phone_raw TEXT,
  ADD COLUMN IF NOT EXISTS buyer_tax_id_raw TEXT,
  ADD COLUMN IF NOT EXISTS snapshot_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ DEFAULT NOW();
CREATE UNIQUE INDEX IF NOT EXISTS orders_workspace_order_id_base
  ON orders(workspace_id, order_id_base);
CREATE INDEX IF NOT EXISTS orders_client_id ON orders(client_id);

ALTER TABLE orders_products
  ADD COLUMN IF NOT EXISTS order_product_id BIGINT,
  ADD COLUMN IF NOT EXISTS bl_product_id TEXT,
  ADD COLUMN IF NOT EXISTS variant_id TEXT,
  ADD COLUMN IF NOT EXISTS ean TEXT,
  ADD COLUMN IF NOT EXISTS preco_unitario NUMERIC(12, 2),
  ADD COLUMN IF NOT EXISTS tax_rate NUMERIC(5, 2);
CREATE UNIQUE INDEX IF NOT EXISTS orders_products_order_line
  ON orders_products(order_id, order_product_id);

ALTER TABLE event_queue
  ADD COLUMN IF NOT EXISTS workspace_id UUID REFERENCES workspaces(id),
  ADD COLUMN IF NOT EXISTS object_id BIGINT,
  ADD COLUMN IF NOT EXISTS event_date TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS ignore_reason TEXT,
  ADD COLUMN IF NOT EXISTS workflow_id TEXT,
  ADD COLUMN IF NOT EXISTS started_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ DEFAULT NOW();
CREATE UNIQUE INDEX IF NOT EXISTS event_queue_workspace_log_id
  ON event_queue(workspace_id, event_log_id);
-- Log ids are unique per workspace, not across them; the seed's global key
-- would make the ledger's upsert fail on a shared id.
ALTER TABLE event_queue DROP CONSTRAINT IF EXISTS event_queue_event_log_id_key;
-- The seed processed the ledger through a pg_net trigger; Temporal does now,
-- and the trigger would call the old edge function on every new row.
DROP TRIGGER IF EXISTS event_queue_trigger ON event_queue;
CREATE INDEX IF NOT EXISTS event_queue_workspace_status
  ON event_queue(workspace_id, status);

ALTER TABLE baselinker_sync_state
  ADD COLUMN IF NOT EXISTS paused BOOLEAN DEFAULT false,
  ADD COLUMN IF NOT EXISTS pause_reason TEXT,
  ADD COLUMN IF NOT EXISTS last_batch_size INTEGER DEFAULT 0,
  ADD COLUMN IF NOT EXISTS journal_head_log_id BIGINT DEFAULT 0;

-- The newest order snapshot fetched from BaseLinker, shared by every event of
-- the order: one getOrders call can serve a whole batch.
CREATE TABLE IF NOT EXISTS order_snapshots (
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  order_id_base BIGINT NOT NULL,
  found BOOLEAN NOT NULL,
  payload JSONB,
  as_of_log_id BIGINT NOT NULL,
  fetched_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (workspace_id, order_id_base)
);

-- getOrderStatusList, cached: orders carry only the status id.
CREATE TABLE IF NOT EXISTS order_statuses (
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  status_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  name_for_customer TEXT,
  color TEXT,
  fetched_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (workspace_id, status_id)
);

-- migrate:down
DROP TABLE IF EXISTS order_statuses;
DROP TABLE IF EXISTS order_snapshots;
