#!/bin/sh
# Creates or upgrades Temporal's PostgreSQL databases with the server's own schema tool (temporal-sql-tool), the
# steps of the server's `install-schema-postgresql12` make target. Idempotent: safe on every deploy.
#   temporal:            create-database, setup-schema -v 0.0 (versioning tables), update-schema -d versioned/
#   temporal_visibility: create-database, setup-schema -f schema.sql -v VISIBILITY_SCHEMA_VERSION (1.32 ships the
#                        PostgreSQL visibility schema as one file, no versioned/ directory)
# Used by `npm run cluster` (scripts/cluster-lib.ts, with the tool built from the Go module) and by the compose
# service `temporal-schema` (image temporalio/admin-tools, schemas under /etc/temporal/schema).
set -eu

: "${SQL_HOST:?SQL_HOST: the PostgreSQL host}"
SQL_PORT="${SQL_PORT:-5432}"
: "${SQL_USER:?SQL_USER: a PostgreSQL role that may create databases}"
SQL_PASSWORD="${SQL_PASSWORD:-}"
: "${SCHEMA_DIR:?SCHEMA_DIR: the schema/postgresql/v12 folder of the server release}"
: "${VISIBILITY_SCHEMA_VERSION:?VISIBILITY_SCHEMA_VERSION: the release's PostgreSQL VisibilityVersion}"
TEMPORAL_DB="${TEMPORAL_DB:-temporal}"
VISIBILITY_DB="${VISIBILITY_DB:-temporal_visibility}"
SQL_TOOL="${SQL_TOOL:-temporal-sql-tool}"

log() { echo "[temporal-schema] $*"; }
tool() {
  db=$1
  shift
  "$SQL_TOOL" --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" --pw "$SQL_PASSWORD" --pl postgres12 --db "$db" "$@"
}
# True when $1 has the schema tool's version table (the schema was set up before).
versioned() { tool "$1" update-schema -d "$SCHEMA_DIR/temporal/versioned" -v 0.0 >/dev/null 2>&1; }

for db in "$TEMPORAL_DB" "$VISIBILITY_DB"; do
  if tool "$db" create-database >/dev/null 2>&1; then log "created database $db"; else log "database $db exists"; fi
done

if ! versioned "$TEMPORAL_DB"; then
  log "setting up $TEMPORAL_DB"
  tool "$TEMPORAL_DB" setup-schema -v 0.0
fi
tool "$TEMPORAL_DB" update-schema -d "$SCHEMA_DIR/temporal/versioned"
log "$TEMPORAL_DB is up to date"

if versioned "$VISIBILITY_DB"; then
  log "$VISIBILITY_DB already set up"
else
  log "setting up $VISIBILITY_DB at version $VISIBILITY_SCHEMA_VERSION"
  tool "$VISIBILITY_DB" setup-schema -f "$SCHEMA_DIR/visibility/schema.sql" -v "$VISIBILITY_SCHEMA_VERSION"
fi
log "done"
