-- Revisions of the tables that Tessera serves. After `SELECT tessera_track('public.camps')`,
-- every statement that changes public.camps increments its row in tessera_revisions and
-- notifies the channel `tessera_changes`, which Tessera listens on (`notify_channel`).
-- A source then reads its revision with
--   revision_query = "SELECT revision::text FROM tessera_revisions WHERE table_name = 'public.camps'"
-- The functions keep the search_path of this script, so that writers with another search_path
-- still find tessera_revisions.
CREATE TABLE IF NOT EXISTS tessera_revisions (
  table_name text PRIMARY KEY,
  revision bigint NOT NULL
);

CREATE OR REPLACE FUNCTION tessera_bump_revision() RETURNS trigger AS $$
BEGIN
  INSERT INTO tessera_revisions AS r VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 1)
    ON CONFLICT (table_name) DO UPDATE SET revision = r.revision + 1;
  PERFORM pg_notify('tessera_changes', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NULL;
END
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;

-- Adds the trigger to a table. Running it again for the same table fails, because the
-- trigger exists.
CREATE OR REPLACE FUNCTION tessera_track(target regclass) RETURNS void AS $$
BEGIN
  EXECUTE format(
    'CREATE TRIGGER tessera_revision AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s '
    'FOR EACH STATEMENT EXECUTE FUNCTION tessera_bump_revision()', target);
END
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;
