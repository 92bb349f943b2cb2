#!/usr/bin/env bash
# Start the local PostgreSQL if it is down and create the test database ($1) if it is missing.
set -euo pipefail
DB="${1:-fengqiao_test}"
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "Starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres "$DB"
fi
