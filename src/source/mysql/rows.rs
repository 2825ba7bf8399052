//! Rows events decoded with a per-table plan: [`RowDecoder`] turns one table map into one
//! decoding step per column and the envelope's [`TableSchema`] once; rows events then only
//! run the plan.
//!
//! ```text
//! ROWS       column_count lenenc | present bitmap | [present-after bitmap (updates)] |
//!            row*: null bitmap (over present columns) | values of non-null present columns
//! ```

use crate::event::Value;

use super::binlog::{RowsEvent, RowsKind};
use super::jsonb;
use super::plan::{RowDecoder, Step};
use super::reader::{Malformed, Reader, Res};
use super::table_map::lsb_bit;
use super::values::{parse_text, read_value};

/// One decoded row change.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    /// Old image (updates, deletes).
    pub before: Option<Vec<Value>>,
    /// New image (inserts, updates).
    pub after: Option<Vec<Value>>,
}

impl RowDecoder {
    /// Converts a value as the text protocol returns it (snapshot `SELECT`, session time zone
    /// UTC, utf8mb4 results) into the value a binlog row of the same column decodes to.
    pub fn parse_text(&self, column: usize, raw: Option<&[u8]>) -> Res<Value> {
        let Some(raw) = raw else {
            return Ok(Value::Null);
        };
        let Some(step) = self.steps.get(column) else {
            return Err(Malformed(format!(
                "result has more columns than the table's {}",
                self.steps.len()
            )));
        };
        let v = parse_text(step, raw)?;
        Ok(match &self.finish[column] {
            Some(f) => f.apply(v),
            None => v,
        })
    }

    /// Decodes every row of a rows event, calling `each` per row change in order.
    pub fn rows(&self, ev: &RowsEvent<'_>, mut each: impl FnMut(RowChange)) -> Res<()> {
        let mut r = Reader::new(ev.body);
        let n = r.lenenc("column count")? as usize;
        if n != self.steps.len() {
            return Err(Malformed(format!(
                "rows event has {n} columns, its table map {}",
                self.steps.len()
            )));
        }
        let present = r.take(n.div_ceil(8), "columns-present bitmap")?;
        let present_after = if ev.kind == RowsKind::Update {
            r.take(n.div_ceil(8), "columns-present-after bitmap")?
        } else {
            present
        };
        // Every row reads at least one byte, or the loop below would not end.
        let any = |bits: &[u8]| (0..n).any(|i| lsb_bit(bits, i));
        if !any(present) || !any(present_after) {
            return Err(Malformed("rows event names no columns".into()));
        }
        while !r.is_empty() {
            match ev.kind {
                RowsKind::Write => {
                    let after = self.image(&mut r, present, false)?;
                    each(RowChange {
                        before: None,
                        after: Some(after),
                    });
                }
                RowsKind::Delete => {
                    let before = self.image(&mut r, present, false)?;
                    each(RowChange {
                        before: Some(before),
                        after: None,
                    });
                }
                RowsKind::Update => {
                    let before = self.image(&mut r, present, false)?;
                    let after = if ev.partial {
                        let options = r.lenenc("partial update value options")?;
                        if options & 1 != 0 {
                            let json_cols = self
                                .steps
                                .iter()
                                .filter(|s| matches!(s, Step::Json { .. }))
                                .count();
                            let partial = r.take(json_cols.div_ceil(8), "partial JSON bitmap")?;
                            if (0..json_cols).any(|i| lsb_bit(partial, i)) {
                                self.partial_image(&mut r, present_after, partial, &before)?
                            } else {
                                self.image(&mut r, present_after, false)?
                            }
                        } else {
                            self.image(&mut r, present_after, false)?
                        }
                    } else {
                        self.image(&mut r, present_after, false)?
                    };
                    each(RowChange {
                        before: Some(before),
                        after: Some(after),
                    });
                }
            }
        }
        Ok(())
    }

    fn image(&self, r: &mut Reader<'_>, present: &[u8], _partial: bool) -> Res<Vec<Value>> {
        self.image_with(r, present, None)
    }

    /// An after image whose partial JSON columns hold diffs against the before image.
    fn partial_image(
        &self,
        r: &mut Reader<'_>,
        present: &[u8],
        partial: &[u8],
        before: &[Value],
    ) -> Res<Vec<Value>> {
        self.image_with(r, present, Some((partial, before)))
    }

    /// One row image; with `partial` (the partial-JSON bitmap and the before image), marked
    /// JSON columns are diffs to apply to the old document.
    fn image_with(
        &self,
        r: &mut Reader<'_>,
        present: &[u8],
        partial: Option<(&[u8], &[Value])>,
    ) -> Res<Vec<Value>> {
        let count = (0..self.steps.len())
            .filter(|i| lsb_bit(present, *i))
            .count();
        let nulls = r.take(count.div_ceil(8), "row null bitmap")?;
        let mut out = Vec::with_capacity(self.steps.len());
        let mut k = 0;
        let mut json_index = 0;
        for (i, step) in self.steps.iter().enumerate() {
            let this_json = json_index;
            if matches!(step, Step::Json { .. }) {
                json_index += 1;
            }
            if !lsb_bit(present, i) {
                // Not in this image (binlog_row_image = MINIMAL or NOBLOB).
                out.push(Value::Unavailable);
                continue;
            }
            let is_null = lsb_bit(nulls, k);
            k += 1;
            let diff_of = partial.filter(|(bits, _)| lsb_bit(bits, this_json));
            out.push(match (is_null, step, diff_of) {
                (true, _, _) => Value::Null,
                (false, Step::Json { len_bytes }, Some((_, before))) => {
                    let len = r.uint(*len_bytes, "JSON diff length")? as usize;
                    let diff = r.take(len, "JSON diff")?;
                    match before.get(i) {
                        Some(Value::Text(base)) => Value::text(jsonb::apply_diffs(base, diff)?),
                        // The old document is not in the before image (binlog_row_image =
                        // MINIMAL): the new one cannot be rebuilt from the diff.
                        _ => Value::Unavailable,
                    }
                }
                _ => read_value(r, step)?,
            });
            if let Some(f) = &self.finish[i] {
                let v = out.pop().expect("just pushed");
                out.push(f.apply(v));
            }
        }
        Ok(out)
    }
}
