//! The stdout sink: one JSON line per record (`{"topic","key","value","headers"?}`).

use std::io::Write;

use super::{Delivery, Sink, SinkError, SinkFuture};
use crate::encode::Record;

/// Lines are written out in batches of about this many bytes.
const BATCH_BYTES: usize = 1 << 16;

/// Writes records to standard output. Lines are buffered per connector and written whole
/// under the stdout lock, so connectors sharing the process never interleave partial lines.
pub struct StdoutSink {
    buffer: Vec<u8>,
}

impl StdoutSink {
    /// A sink on the process's standard output.
    pub fn new() -> Self {
        StdoutSink {
            buffer: Vec::with_capacity(BATCH_BYTES * 2),
        }
    }

    /// Writes one line. Acceptance is immediate; durability comes with [`Self::flush`]. A
    /// large JSON value is written from the record as it is, not copied into the buffer.
    fn write_line(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        let line = &mut self.buffer;
        line.extend_from_slice(b"{\"topic\":");
        serde_json::to_writer(&mut *line, &*record.topic).map_err(std::io::Error::other)?;
        line.extend_from_slice(b",\"key\":");
        embed(line, record.key.as_deref());
        line.extend_from_slice(b",\"value\":");
        let large = record
            .value
            .as_deref()
            .filter(|v| v.len() > BATCH_BYTES && is_object(v));
        let mut tail = Vec::new();
        let rest = if large.is_some() {
            &mut tail
        } else {
            &mut *line
        };
        if large.is_none() {
            embed(rest, record.value.as_deref());
        }
        if !record.headers.is_empty() {
            rest.extend_from_slice(b",\"headers\":{");
            for (i, (name, value)) in record.headers.iter().enumerate() {
                if i > 0 {
                    rest.push(b',');
                }
                serde_json::to_writer(&mut *rest, name).map_err(std::io::Error::other)?;
                rest.push(b':');
                embed(rest, Some(value));
            }
            rest.push(b'}');
        }
        rest.extend_from_slice(b"}\n");
        if let Some(value) = large {
            let mut out = std::io::stdout().lock();
            out.write_all(&self.buffer)?;
            out.write_all(value)?;
            out.write_all(&tail)?;
            out.flush()?;
            self.buffer.clear();
        } else if self.buffer.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(Delivery::Accepted)
    }

    /// Writes buffered lines out.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        if !self.buffer.is_empty() {
            let mut out = std::io::stdout().lock();
            out.write_all(&self.buffer)?;
            out.flush()?;
            self.buffer.clear();
            // A line that was large does not keep its memory.
            if self.buffer.capacity() > BATCH_BYTES * 4 {
                self.buffer = Vec::with_capacity(BATCH_BYTES * 2);
            }
        }
        Ok(())
    }
}

impl Sink for StdoutSink {
    fn ensure_topic<'a>(&'a mut self, _topic: &'a str) -> SinkFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn send<'a>(&'a mut self, record: &'a Record) -> SinkFuture<'a, Delivery> {
        Box::pin(std::future::ready(self.write_line(record)))
    }

    fn send_now(&mut self, record: &Record) -> Option<Result<Delivery, SinkError>> {
        Some(self.write_line(record))
    }

    fn flush_buffered(&mut self) -> Result<(), SinkError> {
        self.flush()
    }

    fn close(&mut self) -> SinkFuture<'_, ()> {
        Box::pin(std::future::ready(self.flush()))
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

/// Embeds a JSON object as it is (the JSON encoders only produce valid objects), or
/// anything else as a JSON string.
fn embed(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => out.extend_from_slice(b"null"),
        Some(b) if is_object(b) => out.extend_from_slice(b),
        Some(b) => {
            let _ = serde_json::to_writer(&mut *out, &String::from_utf8_lossy(b));
        }
    }
}

fn is_object(b: &[u8]) -> bool {
    b.first() == Some(&b'{') && b.last() == Some(&b'}')
}
