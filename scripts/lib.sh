# Shared settings of the local environment scripts (sourced, not run).
# Ports are chosen not to clash with a default PostgreSQL (5432) or Kafka (9092).
SLUICE_PG_PORT="${SLUICE_PG_PORT:-15432}"
SLUICE_KAFKA_PORT="${SLUICE_KAFKA_PORT:-19092}"
SLUICE_MYSQL_PORT="${SLUICE_MYSQL_PORT:-13306}"
export SLUICE_STATE_DIR="${SLUICE_STATE_DIR:-/tmp/sluice-dev}"
export PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DATA="$SLUICE_STATE_DIR/pg"
PG_LOG="$SLUICE_STATE_DIR/postgres.log"
SLUICE_TXN_KAFKA_PORT="${SLUICE_TXN_KAFKA_PORT:-19192}"
NISSHI_PID="$SLUICE_STATE_DIR/nisshi.pid"
NISSHI_LOG="$SLUICE_STATE_DIR/nisshi.log"
export SLUICE_TEST_TXN_BROKERS="${SLUICE_TEST_TXN_BROKERS:-127.0.0.1:$SLUICE_TXN_KAFKA_PORT}"
TANSU_PID="$SLUICE_STATE_DIR/tansu.pid"
TANSU_LOG="$SLUICE_STATE_DIR/tansu.log"
export SLUICE_TEST_PG="${SLUICE_TEST_PG:-postgres://sluice:sluice@127.0.0.1:$SLUICE_PG_PORT}"
export SLUICE_TEST_MYSQL="${SLUICE_TEST_MYSQL:-mysql://sluice:sluice@127.0.0.1:$SLUICE_MYSQL_PORT}"
export SLUICE_SCRIPTS="${SLUICE_SCRIPTS:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
export SLUICE_TEST_BROKERS="${SLUICE_TEST_BROKERS:-127.0.0.1:$SLUICE_KAFKA_PORT}"
export PATH="$HOME/.cargo/bin:$PATH"

log() { printf '[sluice-scripts] %s\n' "$*" >&2; }

# Runs a command as the PostgreSQL server's owner (initdb and postgres refuse root).
as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

wait_for_port() { # host port seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}
