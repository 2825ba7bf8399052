//! The events inside a MySQL 8 transaction payload (`TRANSACTION_PAYLOAD`, binlog
//! compression): uncompressed, checked against the declared size and split. Used by the live
//! stream and the file reader alike; any failure is an error, so a payload is never skipped.

use std::collections::VecDeque;

use super::binlog::{uncompress_payload, EventHeader, HEADER_LEN};
use super::event_type;
use super::reader::{Malformed, Res};

/// One framed event: header and body (checksum removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Position of the event's first byte in its file (or inside its payload).
    pub pos: u64,
    /// Header.
    pub header: EventHeader,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// The events inside a transaction payload: uncompressed, checked against the declared size,
/// and split. Any failure is an error: a payload is never skipped.
pub fn payload_events(
    compression: u64,
    uncompressed_size: u64,
    payload: &[u8],
) -> Res<VecDeque<RawEvent>> {
    let inner = uncompress_payload(compression, uncompressed_size, payload)?;
    if inner.len() as u64 != uncompressed_size {
        return Err(Malformed(format!(
            "the transaction payload uncompresses to {} bytes, but its header declares {uncompressed_size}",
            inner.len()
        )));
    }
    let events = split_events(&inner)?;
    if events.is_empty() {
        return Err(Malformed("the transaction payload holds no events".into()));
    }
    Ok(events)
}

/// Splits an uncompressed transaction payload into its events (no checksums inside).
pub fn split_events(data: &[u8]) -> Res<VecDeque<RawEvent>> {
    let mut out = VecDeque::new();
    let mut off = 0usize;
    while off < data.len() {
        let header = EventHeader::parse(&data[off..])?;
        let size = header.event_size as usize;
        if size < HEADER_LEN || off + size > data.len() {
            return Err(Malformed(format!(
                "payload event of size {size} overruns the payload at offset {off}"
            )));
        }
        if header.type_code == event_type::TRANSACTION_PAYLOAD {
            return Err(Malformed("a transaction payload nested in another".into()));
        }
        out.push_back(RawEvent {
            pos: off as u64,
            header,
            body: data[off + HEADER_LEN..off + size].to_vec(),
        });
        off += size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v4 event: header (no checksum, as inside a payload) and body.
    fn event(type_code: u8, body: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        e.push(type_code);
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&0u16.to_le_bytes());
        e.extend_from_slice(body);
        e
    }

    fn two_events() -> Vec<u8> {
        let mut raw = event(event_type::QUERY, b"query body");
        raw.extend(event(event_type::XID, &7u64.to_le_bytes()));
        raw
    }

    #[test]
    fn a_zstd_payload_gives_its_events_in_order() {
        let raw = two_events();
        let packed = zstd::bulk::compress(&raw, 3).unwrap();
        let events = payload_events(0, raw.len() as u64, &packed).unwrap();
        let codes: Vec<u8> = events.iter().map(|e| e.header.type_code).collect();
        assert_eq!(codes, [event_type::QUERY, event_type::XID]);
        assert_eq!(events[0].body, b"query body");
        assert_eq!(events[1].pos, (HEADER_LEN + 10) as u64);
        let plain = payload_events(255, raw.len() as u64, &raw).unwrap();
        assert_eq!(plain, events);
    }

    #[test]
    fn a_payload_that_does_not_uncompress_is_an_error_not_an_empty_transaction() {
        let raw = two_events();
        let mut packed = zstd::bulk::compress(&raw, 3).unwrap();
        let mid = packed.len() / 2;
        packed[mid] ^= 0xff;
        packed.truncate(packed.len() - 3);
        let err = payload_events(0, raw.len() as u64, &packed).unwrap_err();
        assert!(
            err.0.contains("does not uncompress") || err.0.contains("declares"),
            "{}",
            err.0
        );
        let err = payload_events(0, raw.len() as u64, b"not zstd at all").unwrap_err();
        assert!(err.0.contains("does not uncompress"), "{}", err.0);
    }

    #[test]
    fn a_payload_whose_size_differs_from_its_header_is_an_error() {
        let raw = two_events();
        let packed = zstd::bulk::compress(&raw, 3).unwrap();
        for declared in [raw.len() as u64 - 1, raw.len() as u64 + 1] {
            let err = payload_events(0, declared, &packed).unwrap_err();
            assert!(err.0.contains("declares"), "{}", err.0);
        }
    }

    #[test]
    fn unknown_compression_empty_and_nested_payloads_are_errors() {
        let raw = two_events();
        assert!(payload_events(1, raw.len() as u64, &raw)
            .unwrap_err()
            .0
            .contains("unknown"));
        assert!(payload_events(255, 0, &[])
            .unwrap_err()
            .0
            .contains("no events"));
        let nested = event(event_type::TRANSACTION_PAYLOAD, b"x");
        let err = payload_events(255, nested.len() as u64, &nested).unwrap_err();
        assert!(err.0.contains("nested"), "{}", err.0);
        let cut = &raw[..raw.len() - 2];
        let err = payload_events(255, cut.len() as u64, cut).unwrap_err();
        assert!(err.0.contains("overruns"), "{}", err.0);
    }
}
