-- The PostgreSQL role split for cardunlock-server: the server's role may change the store's
-- granting tables but may only add to the audit log (INSERT, and SELECT for the answers step's
-- cross-check and the operator API), never UPDATE, DELETE or TRUNCATE it; the role
-- `cardunlock_audit_reader` (NOLOGIN: grant it to your auditors' logins) reads the log.
--
-- The tables must be owned by an admin role, not by the server's role (an owner can always
-- grant itself back). So: let the admin role create and migrate the schema (run the server, or
-- `cardunlock-server add-operator`, once with the admin's URL), then run this as that admin:
--
--   psql "postgres://admin@host/cardunlock" -v server_role=cardunlock_server \
--        -f scripts/postgres-audit-roles.sql
--
-- and start the servers with the server role's URL. Run it again after every upgrade that
-- migrates the schema (the upgrade itself runs as the admin). Archiving audit rows (deleting
-- them) is the admin's job, not the server's.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardunlock_audit_reader') THEN
    CREATE ROLE cardunlock_audit_reader NOLOGIN;
  END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"server_role";
GRANT USAGE ON SCHEMA public TO :"server_role";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"server_role";
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM :"server_role";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO :"server_role";

GRANT USAGE ON SCHEMA public TO cardunlock_audit_reader;
GRANT SELECT ON audit, audit_head TO cardunlock_audit_reader;
