#!/bin/sh
# Run once by the postgres image when it creates the primary's data directory
# (/docker-entrypoint-initdb.d): the standby of the `standby` profile may stream from it, as the
# compose user, with its password (PostgreSQL's "host replication" line; wal_level is replica and
# max_wal_senders 10 by default).
set -e
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
