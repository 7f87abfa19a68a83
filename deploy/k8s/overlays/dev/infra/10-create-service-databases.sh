#!/bin/bash
# Database-per-service for the dev overlay's PostgreSQL: one role and one database per service
# that keeps data (the same as docker/postgres-init for compose, plus book-service). The
# official image runs it once, on an empty data volume, as the superuser; the passwords come
# from the Secret postgresql-init and must match the ones inside the *-db Secrets' URLs.
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
create_service_database book_service_db book_service "${BOOK_SERVICE_DB_PASSWORD:-}"
