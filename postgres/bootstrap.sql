-- Run by the launcher as superuser in the source database on every `up` (idempotent).
-- Roles and the database itself are created just before, from settings.

-- The application role owns the captured schema and every table in it.
CREATE SCHEMA IF NOT EXISTS {{schema}} AUTHORIZATION {{app_role}};
ALTER SCHEMA {{schema}} OWNER TO {{app_role}};
REVOKE ALL ON SCHEMA {{schema}} FROM PUBLIC;

-- The CDC role: REPLICATION (set on the role) + read access to the captured tables only.
GRANT CONNECT ON DATABASE {{database}} TO {{cdc_role}};
GRANT USAGE ON SCHEMA {{schema}} TO {{cdc_role}};
GRANT SELECT ON ALL TABLES IN SCHEMA {{schema}} TO {{cdc_role}};
-- Tables the application creates later are readable for Debezium's snapshot too.
ALTER DEFAULT PRIVILEGES FOR ROLE {{app_role}} IN SCHEMA {{schema}} GRANT SELECT ON TABLES TO {{cdc_role}};

-- One publication for the whole schema: tables created later are published automatically
-- (PostgreSQL 15+ `FOR TABLES IN SCHEMA`). Debezium's autocreate is off so the CDC role
-- needs no ownership.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{{publication}}') THEN
    CREATE PUBLICATION {{publication}} FOR TABLES IN SCHEMA {{schema}};
  END IF;
END
$$;
