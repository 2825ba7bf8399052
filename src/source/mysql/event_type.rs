//! Binlog event type codes and their names (MySQL's `Log_event_type`, MariaDB's additions).

// Event type codes Sluice distinguishes.
pub const START_V3: u8 = 1;
pub const QUERY: u8 = 2;
pub const STOP: u8 = 3;
pub const ROTATE: u8 = 4;
pub const FORMAT_DESCRIPTION: u8 = 15;
pub const XID: u8 = 16;
pub const TABLE_MAP: u8 = 19;
pub const WRITE_ROWS_V0: u8 = 20;
pub const DELETE_ROWS_V0: u8 = 22;
pub const WRITE_ROWS_V1: u8 = 23;
pub const UPDATE_ROWS_V1: u8 = 24;
pub const DELETE_ROWS_V1: u8 = 25;
pub const HEARTBEAT: u8 = 27;
pub const ROWS_QUERY: u8 = 29;
pub const WRITE_ROWS: u8 = 30;
pub const UPDATE_ROWS: u8 = 31;
pub const DELETE_ROWS: u8 = 32;
pub const GTID: u8 = 33;
pub const ANONYMOUS_GTID: u8 = 34;
pub const PREVIOUS_GTIDS: u8 = 35;
pub const XA_PREPARE: u8 = 38;
pub const PARTIAL_UPDATE_ROWS: u8 = 39;
pub const TRANSACTION_PAYLOAD: u8 = 40;
pub const HEARTBEAT_V2: u8 = 41;
pub const GTID_TAGGED: u8 = 42;
pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
pub const MARIADB_GTID: u8 = 162;
pub const MARIADB_GTID_LIST: u8 = 163;
pub const MARIADB_START_ENCRYPTION: u8 = 164;
pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
pub const MARIADB_WRITE_ROWS_COMPRESSED_V1: u8 = 166;
pub const MARIADB_DELETE_ROWS_COMPRESSED: u8 = 171;

/// A readable name for an event type code (for errors and logs).
pub fn type_name(code: u8) -> &'static str {
    match code {
        START_V3 => "START_EVENT_V3",
        QUERY => "QUERY_EVENT",
        STOP => "STOP_EVENT",
        ROTATE => "ROTATE_EVENT",
        5 => "INTVAR_EVENT",
        13 => "RAND_EVENT",
        14 => "USER_VAR_EVENT",
        FORMAT_DESCRIPTION => "FORMAT_DESCRIPTION_EVENT",
        XID => "XID_EVENT",
        TABLE_MAP => "TABLE_MAP_EVENT",
        20..=22 => "ROWS_EVENT_V0",
        WRITE_ROWS_V1 => "WRITE_ROWS_EVENT_V1",
        UPDATE_ROWS_V1 => "UPDATE_ROWS_EVENT_V1",
        DELETE_ROWS_V1 => "DELETE_ROWS_EVENT_V1",
        26 => "INCIDENT_EVENT",
        HEARTBEAT => "HEARTBEAT_EVENT",
        ROWS_QUERY => "ROWS_QUERY_EVENT",
        WRITE_ROWS => "WRITE_ROWS_EVENT",
        UPDATE_ROWS => "UPDATE_ROWS_EVENT",
        DELETE_ROWS => "DELETE_ROWS_EVENT",
        GTID => "GTID_EVENT",
        ANONYMOUS_GTID => "ANONYMOUS_GTID_EVENT",
        PREVIOUS_GTIDS => "PREVIOUS_GTIDS_EVENT",
        36 => "TRANSACTION_CONTEXT_EVENT",
        37 => "VIEW_CHANGE_EVENT",
        XA_PREPARE => "XA_PREPARE_LOG_EVENT",
        PARTIAL_UPDATE_ROWS => "PARTIAL_UPDATE_ROWS_EVENT",
        TRANSACTION_PAYLOAD => "TRANSACTION_PAYLOAD_EVENT",
        HEARTBEAT_V2 => "HEARTBEAT_LOG_EVENT_V2",
        GTID_TAGGED => "GTID_TAGGED_LOG_EVENT",
        MARIADB_ANNOTATE_ROWS => "ANNOTATE_ROWS_EVENT",
        MARIADB_BINLOG_CHECKPOINT => "BINLOG_CHECKPOINT_EVENT",
        MARIADB_GTID => "GTID_EVENT (MariaDB)",
        MARIADB_GTID_LIST => "GTID_LIST_EVENT",
        MARIADB_START_ENCRYPTION => "START_ENCRYPTION_EVENT",
        MARIADB_QUERY_COMPRESSED => "QUERY_COMPRESSED_EVENT",
        166..=171 => "ROWS_COMPRESSED_EVENT (MariaDB)",
        _ => "unknown event",
    }
}
