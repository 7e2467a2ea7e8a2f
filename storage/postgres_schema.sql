-- tokend's PostgreSQL schema. Embedded into the binary at build time and run by every process at
-- start-up, so it must stay idempotent: only CREATE ... IF NOT EXISTS and guarded changes. The store
-- runs it under a transaction-scoped advisory lock, so pods starting together do not race.

-- One row per live token. Keys are stored only as SHA-256 digests; id gives creation order.
CREATE TABLE IF NOT EXISTS tokend_tokens (
  id             bigserial PRIMARY KEY,
  digest         bytea  NOT NULL UNIQUE,
  display_prefix text   NOT NULL,
  description    text   NOT NULL,
  type           text   NOT NULL,
  created_at     bigint NOT NULL,
  owner          bigint NOT NULL
);
-- A user's list in creation order.
CREATE INDEX IF NOT EXISTS tokend_tokens_owner_id ON tokend_tokens (owner, id);

-- Every delete appends here in the same statement, so a process that missed the NOTIFY finds the
-- revoked digest by polling seq > its last seen seq (and re-reads the last seconds, because
-- sequence values are taken before commit and can become visible out of order).
CREATE TABLE IF NOT EXISTS tokend_revocations (
  seq        bigserial   PRIMARY KEY,
  digest     bytea       NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tokend_revocations_revoked_at ON tokend_revocations (revoked_at);
