-- migrate:up
-- Every journal event type: removed, merged, split and copied orders keep their
-- rows with links; invoices, receipts and packages get tables of their own;
-- one-time reactions are claimed once per subject.

ALTER TABLE orders
  ADD COLUMN IF NOT EXISTS removed_at TIMESTAMPTZ,
  ADD COLUMN IF NOT EXISTS merged_into_order_id_base BIGINT,
  ADD COLUMN IF NOT EXISTS split_from_order_id_base BIGINT,
  ADD COLUMN IF NOT EXISTS copied_from_order_id_base BIGINT;

ALTER TABLE clients
  ADD COLUMN IF NOT EXISTS blacklisted_at TIMESTAMPTZ;

CREATE TABLE IF NOT EXISTS invoices (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  invoice_id BIGINT NOT NULL,
  order_id_base BIGINT NOT NULL,
  number TEXT,
  type TEXT,
  series_id BIGINT,
  date_add TIMESTAMPTZ,
  date_sell TIMESTAMPTZ,
  date_pay_to TIMESTAMPTZ,
  currency TEXT,
  total_price_brutto NUMERIC(12, 2),
  total_price_netto NUMERIC(12, 2),
  buyer_name TEXT,
  buyer_tax_id_raw TEXT,
  buyer_tax_id TEXT,
  payload JSONB,
  fetched_at TIMESTAMPTZ NOT NULL,
  deleted_at TIMESTAMPTZ,
  UNIQUE (workspace_id, invoice_id)
);
CREATE INDEX IF NOT EXISTS invoices_order ON invoices(workspace_id, order_id_base);

CREATE TABLE IF NOT EXISTS receipts (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  receipt_id BIGINT NOT NULL,
  order_id_base BIGINT NOT NULL,
  receipt_full_nr TEXT,
  series_id BIGINT,
  date_add TIMESTAMPTZ,
  payment_method TEXT,
  nip TEXT,
  total_price_brutto NUMERIC(12, 2),
  payload JSONB,
  fetched_at TIMESTAMPTZ NOT NULL,
  deleted_at TIMESTAMPTZ,
  UNIQUE (workspace_id, receipt_id)
);
CREATE INDEX IF NOT EXISTS receipts_order ON receipts(workspace_id, order_id_base);

CREATE TABLE IF NOT EXISTS packages (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  package_id BIGINT NOT NULL,
  order_id_base BIGINT NOT NULL,
  courier_code TEXT,
  courier_package_nr TEXT,
  courier_inner_number TEXT,
  tracking_status INTEGER,
  tracking_status_date TIMESTAMPTZ,
  tracking_url TEXT,
  payload JSONB,
  fetched_at TIMESTAMPTZ NOT NULL,
  deleted_at TIMESTAMPTZ,
  UNIQUE (workspace_id, package_id)
);
CREATE INDEX IF NOT EXISTS packages_order ON packages(workspace_id, order_id_base);

-- "The invoices (receipts, packages) of this order reflect every journal entry
-- up to as_of_log_id": lets a batch fetch once for all its events.
CREATE TABLE IF NOT EXISTS order_document_syncs (
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  kind TEXT NOT NULL,
  order_id_base BIGINT NOT NULL,
  as_of_log_id BIGINT NOT NULL,
  fetched_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (workspace_id, kind, order_id_base)
);

-- One row per one-time reaction (a new client, a new order): the first event
-- that claims it owns it, whatever order events arrive in, however often.
CREATE TABLE IF NOT EXISTS reactions (
  workspace_id UUID NOT NULL REFERENCES workspaces(id),
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  owner_log_id BIGINT NOT NULL,
  owner_workflow_id TEXT,
  suppressed_reason TEXT,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  PRIMARY KEY (workspace_id, kind, subject)
);

-- migrate:down
DROP TABLE IF EXISTS reactions;
DROP TABLE IF EXISTS order_document_syncs;
DROP TABLE IF EXISTS packages;
DROP TABLE IF EXISTS receipts;
DROP TABLE IF EXISTS invoices;
