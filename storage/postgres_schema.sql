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

-- Expiry and last use (Unix seconds, 0: never / none), added after the first release: a table of that
-- release gains them with rows that never expire and were never used. Guarded, because ALTER TABLE
-- takes an exclusive lock on the table (which would hold every other pod's lookups) even when the
-- column exists already. A column with a constant default is added without rewriting the table.
DO $tokend$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'tokend_tokens'::regclass
                 AND attname = 'expires_at' AND NOT attisdropped) THEN
    ALTER TABLE tokend_tokens ADD COLUMN expires_at bigint NOT NULL DEFAULT 0;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'tokend_tokens'::regclass
                 AND attname = 'last_used_at' AND NOT attisdropped) THEN
    ALTER TABLE tokend_tokens ADD COLUMN last_used_at bigint NOT NULL DEFAULT 0;
  END IF;
  -- A key's own rate limit (requests per window seconds, bucket size; 0 burst: the limit), added
  -- after expiry: NULL in all three when the key has none and follows the server's default, as
  -- every row of an older table then has. A nullable column with no default is added without
  -- rewriting the table.
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'tokend_tokens'::regclass
                 AND attname = 'rate_limit' AND NOT attisdropped) THEN
    ALTER TABLE tokend_tokens ADD COLUMN rate_limit integer;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'tokend_tokens'::regclass
                 AND attname = 'rate_window' AND NOT attisdropped) THEN
    ALTER TABLE tokend_tokens ADD COLUMN rate_window integer;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'tokend_tokens'::regclass
                 AND attname = 'rate_burst' AND NOT attisdropped) THEN
    ALTER TABLE tokend_tokens ADD COLUMN rate_burst integer;
  END IF;
  -- The removal of long-expired tokens, oldest expiry first; never-expiring tokens are not in it.
  IF to_regclass('tokend_tokens_expires_at') IS NULL THEN
    CREATE INDEX tokend_tokens_expires_at ON tokend_tokens (expires_at, id) WHERE expires_at > 0;
  END IF;
END
$tokend$;

-- Every delete appends here in the same statement, so a process that missed the NOTIFY finds the
-- revoked digest by polling seq > its last seen seq (and re-reads the last seconds, because
-- sequence values are taken before commit and can become visible out of order).
CREATE TABLE IF NOT EXISTS tokend_revocations (
  seq        bigserial   PRIMARY KEY,
  digest     bytea       NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tokend_revocations_revoked_at ON tokend_revocations (revoked_at);
