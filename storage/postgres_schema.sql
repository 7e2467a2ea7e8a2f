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

-- A user's list in creation order, and the seek to a position in it. Guarded: CREATE INDEX IF NOT
-- EXISTS locks the table against writes before it sees that the index exists, so a start would wait
-- for every write in progress, and hold every write queued behind it meanwhile.
DO $tokend$
BEGIN
  IF to_regclass('tokend_tokens_owner_id') IS NULL THEN
    CREATE INDEX tokend_tokens_owner_id ON tokend_tokens (owner, id);
  END IF;
END
$tokend$;

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
-- Guarded as the tokens table's indexes are, so that a start waits for no delete in progress.
DO $tokend$
BEGIN
  IF to_regclass('tokend_revocations_revoked_at') IS NULL THEN
    CREATE INDEX tokend_revocations_revoked_at ON tokend_revocations (revoked_at);
  END IF;
END
$tokend$;

-- How many tokens each owner holds, and the bound an operator gave it (NULL: the server's default;
-- 0: none). Kept by the triggers below on every insert and delete of tokend_tokens, whichever
-- statement or binary makes it, so creates check the bound without counting. A create locks its
-- owners' rows, so creates for one owner in any number of processes take turns.
CREATE TABLE IF NOT EXISTS tokend_owners (
  owner      bigint PRIMARY KEY,
  tokens     bigint NOT NULL DEFAULT 0,
  max_tokens bigint
);

-- The counting triggers, added after rate limits: a table without them gains them and its counts
-- once, holding writes (not reads) to the tokens table for one scan of it; a process starting on a
-- table that has them takes no lock at all. Owner rows are always locked in owner order, as creates
-- lock them, so concurrent statements wait for each other instead of deadlocking.
DO $tokend$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'tokend_tokens'::regclass
                 AND tgname = 'tokend_tokens_count_added')
     OR NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'tokend_tokens'::regclass
                    AND tgname = 'tokend_tokens_count_removed')
     OR NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'tokend_tokens'::regclass
                    AND tgname = 'tokend_tokens_count_truncated') THEN
    -- No write may slip between the triggers' creation and the count they start from.
    LOCK TABLE tokend_tokens IN SHARE ROW EXCLUSIVE MODE;
    -- search_path FROM CURRENT: the functions name this schema's tables whatever the session's path.
    CREATE OR REPLACE FUNCTION tokend_count_added() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $count$
    BEGIN
      INSERT INTO tokend_owners AS h (owner, tokens)
        SELECT owner, count(*) FROM added GROUP BY owner ORDER BY owner
        ON CONFLICT (owner) DO UPDATE SET tokens = h.tokens + EXCLUDED.tokens;
      RETURN NULL;
    END
    $count$;
    CREATE OR REPLACE FUNCTION tokend_count_removed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $count$
    BEGIN
      PERFORM 1 FROM tokend_owners WHERE owner IN (SELECT owner FROM removed) ORDER BY owner FOR UPDATE;
      UPDATE tokend_owners AS h SET tokens = h.tokens - r.n
        FROM (SELECT owner, count(*) AS n FROM removed GROUP BY owner) AS r WHERE h.owner = r.owner;
      RETURN NULL;
    END
    $count$;
    CREATE OR REPLACE FUNCTION tokend_count_truncated() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $count$
    BEGIN
      UPDATE tokend_owners SET tokens = 0 WHERE tokens <> 0;
      RETURN NULL;
    END
    $count$;
    DROP TRIGGER IF EXISTS tokend_tokens_count_added ON tokend_tokens;
    DROP TRIGGER IF EXISTS tokend_tokens_count_removed ON tokend_tokens;
    DROP TRIGGER IF EXISTS tokend_tokens_count_truncated ON tokend_tokens;
    CREATE TRIGGER tokend_tokens_count_added AFTER INSERT ON tokend_tokens
      REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION tokend_count_added();
    CREATE TRIGGER tokend_tokens_count_removed AFTER DELETE ON tokend_tokens
      REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION tokend_count_removed();
    CREATE TRIGGER tokend_tokens_count_truncated AFTER TRUNCATE ON tokend_tokens
      FOR EACH STATEMENT EXECUTE FUNCTION tokend_count_truncated();
    UPDATE tokend_owners SET tokens = 0 WHERE tokens <> 0;
    INSERT INTO tokend_owners AS h (owner, tokens)
      SELECT owner, count(*) FROM tokend_tokens GROUP BY owner ORDER BY owner
      ON CONFLICT (owner) DO UPDATE SET tokens = EXCLUDED.tokens;
  END IF;
END
$tokend$;

-- The key that signs list cursors, made by the first process to start (each offers one; the first
-- stays), so every process and every restart signs and checks cursors alike.
CREATE TABLE IF NOT EXISTS tokend_secrets (
  one           boolean PRIMARY KEY DEFAULT true CHECK (one),
  cursor_secret bytea   NOT NULL CHECK (length(cursor_secret) = 32)
);
