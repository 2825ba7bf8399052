//! The driver's side of each event: a guard around its framing, the checksum of the first
//! (artificial) ROTATE, and its errors as Sluice's.

use futures_util::{FutureExt, StreamExt};

use super::super::binlog::{self, EventHeader, FormatDescription};
use std::collections::VecDeque;

use super::super::event_type;
use super::super::payload::RawEvent;
use super::super::MyError;

/// The next item of a stream, with a panic while polling it (the driver frames events with
/// an `unwrap` on the declared size) turned into an error carrying the panic's message.
pub(super) async fn guarded_next<S>(stream: &mut S) -> Result<Option<S::Item>, String>
where
    S: futures_util::Stream + Unpin,
{
    std::panic::AssertUnwindSafe(stream.next())
        .catch_unwind()
        .await
        .map_err(crate::failure::panic_message)
}

/// The server's first event (an artificial ROTATE) comes before any format description, so
/// the framing cannot know it ends with a checksum; drop one when the CRC says it is there.
pub(super) fn strip_unknown_checksum<'b>(
    header: &EventHeader,
    body: &'b [u8],
    fde: &FormatDescription,
) -> &'b [u8] {
    if header.type_code != event_type::ROTATE || !fde.server_version.is_empty() || body.len() < 12 {
        return body;
    }
    let mut raw = Vec::with_capacity(binlog::HEADER_LEN + body.len());
    raw.extend_from_slice(&header.timestamp.to_le_bytes());
    raw.push(header.type_code);
    raw.extend_from_slice(&header.server_id.to_le_bytes());
    raw.extend_from_slice(&header.event_size.to_le_bytes());
    raw.extend_from_slice(&header.log_pos.to_le_bytes());
    raw.extend_from_slice(&header.flags.to_le_bytes());
    let (data, sum) = body.split_at(body.len() - 4);
    raw.extend_from_slice(data);
    if super::super::reader::crc32(&raw) == u32::from_le_bytes(sum.try_into().expect("4 bytes")) {
        data
    } else {
        body
    }
}
/// The driver hands out the events inside a transaction payload right after the payload
/// event. Sluice decodes them from the payload itself (a payload the driver cannot read is
/// then an error here, not a silent gap), so the driver's copies are recognised and skipped:
/// an event is a copy when it is byte for byte the next one expected. Anything else ends the
/// expectation (a driver that yields no copies loses nothing).
#[derive(Default)]
pub(super) struct PayloadEcho(VecDeque<RawEvent>);

impl PayloadEcho {
    /// The events of the payload just handled.
    pub(super) fn expect(&mut self, events: VecDeque<RawEvent>) {
        self.0 = events;
    }

    /// Whether this event is the next copy (consumed if so).
    pub(super) fn is_echo(&mut self, header: &EventHeader, body: &[u8]) -> bool {
        match self.0.front() {
            Some(next) if next.header == *header && next.body == body => {
                self.0.pop_front();
                true
            }
            Some(_) => {
                self.0.clear();
                false
            }
            None => false,
        }
    }
}

pub(super) fn stream_error(e: mysql_async::Error) -> MyError {
    match e {
        mysql_async::Error::Server(s) if s.code == 1236 => MyError::setup(format!(
            "the server cannot send the binlog from the stored position: {} (error 1236); the binlog it needs was probably purged. Set snapshot.mode = \"when_needed\" to take a new snapshot, or forget the position with `sluice offsets reset <connector>`",
            s.message
        )),
        mysql_async::Error::Server(s) => MyError::Query {
            reason: format!("{} (error {})", s.message, s.code),
            transient: !super::super::definite_code(s.code),
        },
        other => MyError::Stream(other.to_string()),
    }
}
