//! What the integration tests and the `binlog_dump` example reach inside the crate, and the
//! test doubles of the seams. Built only with the `testing` feature; not a stable API.

pub use crate::event::Value;
pub use crate::offsets::contract::contract as offset_store_contract;
pub use crate::offsets::contract::pos as pg_position;
pub use crate::sink::testing::{Fault, FaultyBroker, FaultySink};
pub use crate::source::mysql::decoder::{read_file, FileContents, RowsKind};
