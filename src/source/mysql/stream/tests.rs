//! Tests of the stream's positions, eviction and framing guard.

use super::state::{MapEntry, MAX_TABLE_MAPS};
use super::*;

/// A stream whose second poll panics, as the driver does on an event whose declared
/// size exceeds its bytes.
struct Breaks(u32);

impl futures_util::Stream for Breaks {
    type Item = u32;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<u32>> {
        self.0 += 1;
        if self.0 > 1 {
            panic!("failed to fill whole buffer");
        }
        std::task::Poll::Ready(Some(self.0))
    }
}

fn state(tx: Option<Tx>) -> State {
    let start = MyPosition {
        incremental: None,
        file: "mariadb-bin.000007".into(),
        pos: 100,
        gtids: Some("0-1-10".into()),
        events: 0,
        rows: 0,
        snapshot: SnapshotState::Done,
        last_event: None,
    };
    State {
        fde: FormatDescription::default(),
        file: start.file.clone(),
        gtids: GtidState::parse(MysqlFlavor::Mariadb, start.gtids.as_deref()),
        resume: start.clone(),
        skip_at: None,
        pending_gtid: Some(PendingGtid {
            text: Some("0-1-11".into()),
            gtid: Gtid::Maria(binlog::MariaGtid {
                domain: 0,
                server_id: 1,
                seq: 11,
            }),
            pos: 100,
        }),
        tx,
        maps: HashMap::new(),
        decoders: HashMap::new(),
        dbs: HashMap::new(),
        latest: HashMap::new(),
        definitions: HashMap::new(),
        last_end: 100,
        out: Vec::new(),
        incremental: None,
    }
}

fn tx() -> Tx {
    Tx {
        file: "mariadb-bin.000007".into(),
        pos: 100,
        gtid: Some("0-1-11".into()),
        ts_us: 0,
        thread: None,
        rows_events: 0,
        skip_events: 0,
        skip_rows: 0,
        counts: Default::default(),
    }
}

fn pos(p: MyPosition) -> SourcePosition {
    SourcePosition::Mysql(p)
}

/// MariaDB's `CREATE TABLE ... SELECT` (GTID, CREATE, rows, XID): the schema change is
/// positioned before the group's rows, inside the group, with its GTID not applied, so
/// offsets never move back and a restart re-reads the rows.
#[test]
fn a_ddl_inside_a_group_with_rows_is_positioned_before_them() {
    let mut st = state(Some(tx()));
    let ddl = st.ddl_position(500);
    assert_eq!(ddl.pos, 100, "the group's start");
    assert_eq!(ddl.gtids.as_deref(), Some("0-1-10"), "GTID not applied yet");
    assert!(
        st.pending_gtid.is_some(),
        "the group's GTID applies at its end"
    );
    let t = st.tx.as_ref().unwrap();
    let first_row = st.row_position(t, 0, 0);
    assert!(pos(ddl.clone()) < pos(first_row.clone()));
    // A restart from the DDL record's position resumes at the group's start.
    assert_eq!((ddl.events, ddl.rows), (0, 0));
}

#[test]
fn a_ddl_of_its_own_group_is_positioned_after_it_with_its_gtid() {
    let mut st = state(None);
    let ddl = st.ddl_position(500);
    assert_eq!(ddl.pos, 500);
    assert_eq!(ddl.gtids.as_deref(), Some("0-1-11"));
    assert!(st.pending_gtid.is_none());
}

#[test]
fn table_maps_are_evicted_only_between_transactions() {
    let mut st = state(Some(tx()));
    for id in 0..MAX_TABLE_MAPS as u64 + 5 {
        st.maps.insert(
            id,
            MapEntry {
                body: Vec::new(),
                decoder: None,
            },
        );
    }
    st.evict_maps_if_full();
    assert_eq!(
        st.maps.len(),
        MAX_TABLE_MAPS + 5,
        "kept inside a transaction"
    );
    st.tx = None;
    st.evict_maps_if_full();
    assert!(st.maps.is_empty());
}

#[test]
fn mysql_atomic_create_select_opens_a_transaction() {
    assert!(opens_transaction(
        "CREATE TABLE `t2` (\n  `id` int NOT NULL\n) START TRANSACTION"
    ));
    assert!(opens_transaction(
        "create table t2 select 1 start transaction ;"
    ));
    assert!(!opens_transaction("CREATE TABLE t2 (id int)"));
    assert!(!opens_transaction("TRANSACTION"));
    assert!(!opens_transaction(
        "CREATE TABLE é (x text DEFAULT 'ééééééééééééééé')"
    ));
}

#[tokio::test]
async fn a_panic_while_framing_an_event_is_an_error_not_a_dead_task() {
    let mut s = Breaks(0);
    assert_eq!(guarded_next(&mut s).await, Ok(Some(1)));
    let err = guarded_next(&mut s).await.unwrap_err();
    assert!(err.contains("failed to fill whole buffer"), "{err}");
}

#[test]
fn the_drivers_copies_of_payload_events_are_skipped_once_and_nothing_else() {
    use super::super::payload::RawEvent;
    let header = |type_code, log_pos| EventHeader {
        timestamp: 1,
        type_code,
        server_id: 1,
        event_size: 23,
        log_pos,
        flags: 0,
    };
    let raw = |type_code, body: &[u8]| RawEvent {
        pos: 0,
        header: header(type_code, 0),
        body: body.to_vec(),
    };
    let mut echo = framing::PayloadEcho::default();
    echo.expect([raw(event_type::QUERY, b"BEGIN"), raw(event_type::XID, b"x")].into());
    assert!(echo.is_echo(&header(event_type::QUERY, 0), b"BEGIN"));
    assert!(echo.is_echo(&header(event_type::XID, 0), b"x"));
    // The same bytes again are a new event, not a copy.
    assert!(!echo.is_echo(&header(event_type::XID, 0), b"x"));

    // A driver that yields no copies: the next real event is handled, and ends the wait.
    echo.expect([raw(event_type::QUERY, b"BEGIN")].into());
    assert!(!echo.is_echo(&header(event_type::GTID, 500), b"gtid"));
    assert!(!echo.is_echo(&header(event_type::QUERY, 0), b"BEGIN"));
}

#[test]
fn binlog_lag_counts_the_rest_of_the_file_and_the_later_ones() {
    let logs = vec![
        ("b.000001".to_string(), 1000),
        ("b.000002".to_string(), 500),
        ("b.000003".to_string(), 200),
    ];
    assert_eq!(super::binlog_lag(&logs, "b.000002", 100), Some(600));
    assert_eq!(super::binlog_lag(&logs, "b.000003", 200), Some(0));
    assert_eq!(super::binlog_lag(&logs, "b.000000", 4), None);
}
