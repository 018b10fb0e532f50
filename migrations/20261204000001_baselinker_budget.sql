-- migrate:up
-- The next free BaseLinker request slot per account (a hash of its token):
-- every worker takes its slots here, so together they keep to the budget.
CREATE TABLE IF NOT EXISTS baselinker_budget (
  account TEXT PRIMARY KEY,
  next_slot_at TIMESTAMPTZ NOT NULL
);

-- migrate:down
DROP TABLE IF EXISTS baselinker_budget;
