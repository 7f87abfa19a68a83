#!/bin/bash
# Database-per-service: one role and one database for each service that keeps data.
#
# The official postgres image runs this once, when the data volume is empty, as the superuser
# (POSTGRES_USER). Each service connects with its own role, which owns its own database and
# nothing else, and PUBLIC may not connect to either, so one service's credentials cannot read
# another service's tables. Passwords come from the container's environment (compose passes
# them from .env); psql variables quote them, so any character is safe here (in a URL,
# percent-encode what is not URL-safe, or use `openssl rand -hex 24`).
set -euo pipefail

create_service_database() {
    local database="$1" role="$2" password="$3"
    if [[ -z "$password" ]]; then
        echo "postgres-init: the password for role ${role} is empty" >&2
        exit 1
    fi
    psql --no-psqlrc -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=database="$database" --set=role="$role" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT ALL ON DATABASE :"database" TO :"role";
SQL
    echo "postgres-init: created database ${database} owned by ${role}"
}

create_service_database user_service_db user_service "${USER_SERVICE_DB_PASSWORD:-}"
create_service_database scraper_service_db scraper_service "${SCRAPER_SERVICE_DB_PASSWORD:-}"
# book-service's search needs pg_trgm, a trusted extension its migration creates as the
# database owner (PostgreSQL 13+): nothing to grant here.
create_service_database book_service_db book_service "${BOOK_SERVICE_DB_PASSWORD:-}"
