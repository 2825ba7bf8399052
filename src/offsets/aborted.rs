//! Aborted transactions on a partition, read from its record batches.
//!
//! A `read_committed` consumer drops the records of aborted transactions using the list of
//! aborted transactions the broker sends with each fetch. Some Kafka-compatible brokers send
//! an empty list (nisshi 0.7, the test broker with transactions), so their `read_committed`
//! consumers see aborted records — for the offsets topic, a position whose records were never
//! committed, which would skip changes on the next start. With `[offsets]
//! verify_transactions = true` the Kafka store reads the partition's record batches itself
//! (Fetch v4, plaintext listeners) and drops what [`AbortedRanges`] says was aborted.
//!
//! Only batch headers are read (compressed batches need no inflating), plus the key of each
//! control record (`version: int16, type: int16`, 0 = ABORT, 1 = COMMIT).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Offsets of one partition whose records must not count: aborted, or in a transaction with
/// no marker yet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AbortedRanges {
    /// `[first, last]` offset ranges of aborted transactional batches.
    aborted: Vec<(i64, i64)>,
    /// The first offset of a transaction still open at the end of the scan.
    pub first_open: Option<i64>,
}

impl AbortedRanges {
    /// Whether the record at `offset` belongs to an aborted or still-open transaction.
    pub fn excludes(&self, offset: i64) -> bool {
        self.first_open.is_some_and(|o| offset >= o)
            || self
                .aborted
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&offset))
    }
}

/// The header fields of one record batch (magic v2) that decide its fate.
#[derive(Debug)]
struct BatchHead {
    base: i64,
    last: i64,
    producer: i64,
    transactional: bool,
    /// For a control batch: its marker type (0 abort, 1 commit).
    control: Option<i16>,
}

fn be_i16(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A zig-zag varint; the value and the index after it.
fn varint(b: &[u8], mut at: usize) -> Option<(i64, usize)> {
    let mut shift = 0;
    let mut raw: u64 = 0;
    loop {
        let byte = *b.get(at)?;
        at += 1;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some((((raw >> 1) as i64) ^ -((raw & 1) as i64), at))
}

/// The batches of a fetch answer's record set (a partial batch at the end is left out).
fn batch_heads(records: &[u8]) -> Result<Vec<BatchHead>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 61 <= records.len() {
        let base = be_i64(records, i).ok_or("short batch")?;
        let length = be_i32(records, i + 8).ok_or("short batch")? as usize;
        let end = i + 12 + length;
        if end > records.len() {
            break;
        }
        let magic = records[i + 16];
        if magic != 2 {
            return Err(format!("record batch of magic {magic} (only v2 is read)"));
        }
        let attributes = be_i16(records, i + 21).ok_or("short batch")?;
        let last_delta = be_i32(records, i + 23).ok_or("short batch")?;
        let producer = be_i64(records, i + 43).ok_or("short batch")?;
        let control = if attributes & 0x20 != 0 {
            // The first record's key: version, type.
            let (_len, j) = varint(records, i + 61).ok_or("bad control record")?;
            let j = j + 1; // attributes
            let (_ts, j) = varint(records, j).ok_or("bad control record")?;
            let (_delta, j) = varint(records, j).ok_or("bad control record")?;
            let (key_len, j) = varint(records, j).ok_or("bad control record")?;
            if key_len < 4 {
                return Err("control record without its key".into());
            }
            Some(be_i16(records, j + 2).ok_or("bad control record")?)
        } else {
            None
        };
        out.push(BatchHead {
            base,
            last: base + i64::from(last_delta),
            producer,
            transactional: attributes & 0x10 != 0,
            control,
        });
        i = end;
    }
    Ok(out)
}

/// Applies markers to batches in offset order.
fn ranges_of(batches: &[BatchHead]) -> AbortedRanges {
    let mut open: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
    let mut out = AbortedRanges::default();
    for b in batches {
        match b.control {
            Some(kind) => {
                let held = open.remove(&b.producer).unwrap_or_default();
                if kind == 0 {
                    out.aborted.extend(held);
                }
            }
            None if b.transactional => open.entry(b.producer).or_default().push((b.base, b.last)),
            None => {}
        }
    }
    out.first_open = open.values().flatten().map(|(a, _)| *a).min();
    out
}

/// A plaintext Kafka connection for Fetch requests.
struct Conn {
    stream: TcpStream,
    correlation: i32,
}

impl Conn {
    fn request(&mut self, api_key: i16, version: i16, body: &[u8]) -> std::io::Result<Vec<u8>> {
        self.correlation += 1;
        let client = b"sluice-offsets";
        let mut msg = Vec::with_capacity(body.len() + 32);
        msg.extend_from_slice(&api_key.to_be_bytes());
        msg.extend_from_slice(&version.to_be_bytes());
        msg.extend_from_slice(&self.correlation.to_be_bytes());
        msg.extend_from_slice(&(client.len() as i16).to_be_bytes());
        msg.extend_from_slice(client);
        msg.extend_from_slice(body);
        self.stream.write_all(&(msg.len() as i32).to_be_bytes())?;
        self.stream.write_all(&msg)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size)?;
        let mut answer = vec![0u8; i32::from_be_bytes(size).max(0) as usize];
        self.stream.read_exact(&mut answer)?;
        Ok(answer.split_off(4.min(answer.len())))
    }
}

/// Fetch v4 of one partition from `offset`: (high watermark, record set).
fn fetch(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(i64, Vec<u8>), String> {
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes()); // replica
    body.extend_from_slice(&100i32.to_be_bytes()); // max wait
    body.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    body.extend_from_slice(&(8i32 << 20).to_be_bytes()); // max bytes
    body.push(0); // read_uncommitted: the markers decide here
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&partition.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    body.extend_from_slice(&(8i32 << 20).to_be_bytes());
    let data = conn.request(1, 4, &body).map_err(|e| e.to_string())?;
    let short = || "short fetch answer".to_string();
    let mut i = 4; // throttle
    let topics = be_i32(&data, i).ok_or_else(short)?;
    i += 4;
    if topics < 1 {
        return Ok((0, Vec::new()));
    }
    let name_len = be_i16(&data, i).ok_or_else(short)? as usize;
    i += 2 + name_len + 4; // name, partition count
    let error = be_i16(&data, i + 4).ok_or_else(short)?;
    let high = be_i64(&data, i + 6).ok_or_else(short)?;
    i += 22; // partition, error, high watermark, last stable offset
    let aborted = be_i32(&data, i).ok_or_else(short)?;
    i += 4 + 16 * aborted.max(0) as usize;
    let size = be_i32(&data, i).ok_or_else(short)?;
    i += 4;
    if error != 0 {
        return Err(format!("fetch of {topic}/{partition}: error code {error}"));
    }
    let size = size.max(0) as usize;
    Ok((high, data.get(i..i + size).ok_or_else(short)?.to_vec()))
}

/// Reads `[from, high)` of a partition from its leader at `leader` (`host:port`) and returns
/// what must not count.
pub fn scan(
    leader: &str,
    topic: &str,
    partition: i32,
    from: i64,
    high: i64,
) -> Result<AbortedRanges, String> {
    let stream = TcpStream::connect(leader).map_err(|e| format!("{leader}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut conn = Conn {
        stream,
        correlation: 0,
    };
    let mut offset = from;
    let mut heads = Vec::new();
    while offset < high {
        let (_, records) = fetch(&mut conn, topic, partition, offset)?;
        let batch = batch_heads(&records)?;
        let Some(next) = batch.iter().map(|b| b.last + 1).max() else {
            break;
        };
        heads.extend(batch.into_iter().filter(|b| b.last >= offset));
        offset = next.max(offset + 1);
    }
    Ok(ranges_of(&heads))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2 batch header (no records but a control record when `control` is set).
    fn batch(
        base: i64,
        last_delta: i32,
        producer: i64,
        txn: bool,
        control: Option<i16>,
    ) -> Vec<u8> {
        let mut records = Vec::new();
        if let Some(kind) = control {
            // length, attributes, ts delta, offset delta, key length 4, key, value -1, 0 headers
            let mut r = vec![0u8, 0, 0, 8];
            r.extend_from_slice(&0i16.to_be_bytes());
            r.extend_from_slice(&kind.to_be_bytes());
            r.extend_from_slice(&[1, 0]);
            records.push(r.len() as u8 * 2);
            records.extend(r);
        }
        let mut attributes = 0i16;
        if txn {
            attributes |= 0x10;
        }
        if control.is_some() {
            attributes |= 0x20;
        }
        let mut b = Vec::new();
        b.extend_from_slice(&base.to_be_bytes());
        let length = 49 + records.len() as i32;
        b.extend_from_slice(&length.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&last_delta.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&0i64.to_be_bytes());
        b.extend_from_slice(&producer.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&i32::from(control.is_some()).to_be_bytes());
        b.extend(records);
        b
    }

    #[test]
    fn aborted_and_open_transactions_are_excluded_committed_ones_kept() {
        let mut set = Vec::new();
        set.extend(batch(0, 0, -1, false, None)); // plain record
        set.extend(batch(1, 1, 7, true, None)); // producer 7: offsets 1-2
        set.extend(batch(3, 0, 8, true, None)); // producer 8: offset 3
        set.extend(batch(4, 0, 7, true, Some(1))); // commit 7
        set.extend(batch(5, 0, 8, true, Some(0))); // abort 8
        set.extend(batch(6, 0, 8, true, None)); // producer 8 again: open
        let heads = batch_heads(&set).unwrap();
        assert_eq!(heads.len(), 6);
        let r = ranges_of(&heads);
        assert!(!r.excludes(0) && !r.excludes(1) && !r.excludes(2));
        assert!(r.excludes(3), "aborted");
        assert_eq!(r.first_open, Some(6));
        assert!(r.excludes(6), "open");
    }

    #[test]
    fn a_partial_batch_at_the_end_is_left_for_the_next_fetch() {
        let mut set = batch(0, 0, 7, true, None);
        let whole = set.len();
        set.extend(batch(1, 0, 7, true, Some(1)));
        set.truncate(whole + 20);
        assert_eq!(batch_heads(&set).unwrap().len(), 1);
    }
}
