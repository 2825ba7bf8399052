//! Whether an existing replication slot is provably this connector's, the only kind Sluice
//! ever drops. The proof is the slot record stored with the connector's position
//! ([`SlotId`]): the same database, and a confirmed position between the slot's creation and
//! the connector's stored position (Sluice confirms only what it has stored, so a slot
//! confirmed further was consumed by someone else; one confirmed below the creation point is
//! an older slot of the same name).

use super::catalog::SlotInfo;
use crate::position::{format_lsn, parse_lsn, PgPosition};

/// `Ok` when the slot on the server is the one `stored` was read from; otherwise why not.
pub(super) fn check_owned(
    slot: &SlotInfo,
    stored: Option<&PgPosition>,
    database_oid: u32,
) -> Result<(), String> {
    let Some(stored) = stored else {
        return Err("no stored position of this connector records it".into());
    };
    let Some(id) = stored.slot else {
        return Err(
            "the stored position does not record its slot (it was written by an older Sluice)"
                .into(),
        );
    };
    if slot.database_oid != database_oid || slot.database_oid != id.database_oid {
        return Err(format!(
            "it belongs to database \"{}\", not to the one this connector's slot was created in",
            slot.database
        ));
    }
    let Some(confirmed) = slot.confirmed_flush.as_deref().and_then(parse_lsn) else {
        return Err("it has no confirmed position".into());
    };
    if confirmed < id.created_lsn {
        return Err(format!(
            "it is confirmed up to {}, before this connector's slot was created (at {})",
            format_lsn(confirmed),
            format_lsn(id.created_lsn)
        ));
    }
    if stored.resume_lsn != 0 && confirmed > stored.resume_lsn {
        return Err(format!(
            "another consumer has confirmed it up to {}, past this connector's stored position {}",
            format_lsn(confirmed),
            format_lsn(stored.resume_lsn)
        ));
    }
    Ok(())
}

/// The message when a snapshot needs the slot recreated and the slot is not provably ours.
pub(super) fn not_owned_message(name: &str, slot: &SlotInfo, why: &str) -> String {
    format!(
        "replication slot \"{name}\" (database \"{}\", plugin {}) exists, but Sluice cannot prove it is this connector's: {why}. A snapshot needs a new slot, and Sluice never drops a slot that may be another consumer's. If the slot is not needed, drop it (in database \"{}\": SELECT pg_drop_replication_slot('{name}')); otherwise set postgres.slot to another name",
        slot.database, slot.plugin, slot.database
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::{SlotId, SnapshotState};

    fn slot(oid: u32, confirmed: Option<&str>) -> SlotInfo {
        SlotInfo {
            plugin: "pgoutput".into(),
            database: "shop".into(),
            database_oid: oid,
            active: false,
            confirmed_flush: confirmed.map(String::from),
            wal_status: Some("reserved".into()),
        }
    }

    fn stored(resume: u64, id: Option<SlotId>) -> PgPosition {
        PgPosition {
            incremental: None,
            resume_lsn: resume,
            partial: None,
            snapshot: SnapshotState::Done,
            slot: id,
            last_tx: None,
        }
    }

    const ID: SlotId = SlotId {
        database_oid: 16384,
        created_lsn: 0x100,
    };

    #[test]
    fn a_slot_matching_the_record_is_owned() {
        let s = slot(16384, Some("0/200"));
        assert_eq!(
            check_owned(&s, Some(&stored(0x300, Some(ID))), 16384),
            Ok(())
        );
        assert_eq!(
            check_owned(&s, Some(&stored(0x200, Some(ID))), 16384),
            Ok(())
        );
        // Recorded just before creation: no stored LSN yet.
        assert_eq!(check_owned(&s, Some(&stored(0, Some(ID))), 16384), Ok(()));
    }

    #[test]
    fn without_a_record_nothing_is_owned() {
        let s = slot(16384, Some("0/200"));
        assert!(check_owned(&s, None, 16384)
            .unwrap_err()
            .contains("no stored position"));
        let err = check_owned(&s, Some(&stored(0x300, None)), 16384).unwrap_err();
        assert!(err.contains("older Sluice"), "{err}");
    }

    #[test]
    fn a_slot_of_another_database_is_not_owned() {
        let s = slot(20000, Some("0/200"));
        let err = check_owned(&s, Some(&stored(0x300, Some(ID))), 16384).unwrap_err();
        assert!(err.contains("database \"shop\""), "{err}");
        // Connected to another database than the record's.
        let s = slot(16384, Some("0/200"));
        assert!(check_owned(&s, Some(&stored(0x300, Some(ID))), 20000).is_err());
    }

    #[test]
    fn an_older_slot_or_one_consumed_further_is_not_owned() {
        let older = slot(16384, Some("0/80"));
        let err = check_owned(&older, Some(&stored(0x300, Some(ID))), 16384).unwrap_err();
        assert!(
            err.contains("before this connector's slot was created"),
            "{err}"
        );
        let ahead = slot(16384, Some("0/400"));
        let err = check_owned(&ahead, Some(&stored(0x300, Some(ID))), 16384).unwrap_err();
        assert!(err.contains("another consumer"), "{err}");
        let unconfirmed = slot(16384, None);
        assert!(check_owned(&unconfirmed, Some(&stored(0x300, Some(ID))), 16384).is_err());
    }

    #[test]
    fn the_message_names_the_slot_its_database_and_the_fix() {
        let m = not_owned_message("s1", &slot(1, None), "why");
        assert!(
            m.contains("\"s1\"") && m.contains("database \"shop\""),
            "{m}"
        );
        assert!(m.contains("SELECT pg_drop_replication_slot('s1')"), "{m}");
        assert!(m.contains("postgres.slot"), "{m}");
    }
}
