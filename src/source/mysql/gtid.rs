//! GTID state across transactions: MariaDB's last GTID per domain (what
//! `@slave_connect_state` resumes from) and MySQL's executed set (`uuid[:tag]:intervals`).

use std::sync::Arc;

use super::binlog::{self, MariaGtid, MysqlGtid};
use crate::event::MysqlFlavor;

/// A MySQL GTID set: per source UUID (and tag), the executed transaction numbers as
/// inclusive intervals (`uuid:1-5:7,uuid2[:tag]:1-3`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct MysqlGtidSet {
    /// (uuid, tag) → sorted, disjoint, non-adjacent intervals.
    sets: std::collections::BTreeMap<GtidSource, Vec<(u64, u64)>>,
}

/// A GTID source: server UUID and tag.
type GtidSource = (String, Option<String>);

impl MysqlGtidSet {
    pub(super) fn parse(text: &str) -> Self {
        let mut set = MysqlGtidSet::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut tokens = part.split(':');
            let Some(uuid) = tokens.next() else { continue };
            let mut tag: Option<&str> = None;
            for tok in tokens {
                if tok.starts_with(|c: char| c.is_ascii_digit()) {
                    let (a, b) = tok.split_once('-').unwrap_or((tok, tok));
                    if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                        set.add_range(uuid, tag, a, b);
                    }
                } else {
                    tag = Some(tok);
                }
            }
        }
        set
    }

    pub(super) fn add(&mut self, uuid: &str, tag: Option<&str>, gno: u64) {
        self.add_range(uuid, tag, gno, gno);
    }

    pub(super) fn add_range(&mut self, uuid: &str, tag: Option<&str>, a: u64, b: u64) {
        let intervals = self
            .sets
            .entry((uuid.to_ascii_lowercase(), tag.map(str::to_string)))
            .or_default();
        intervals.push((a.min(b), a.max(b)));
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for &(lo, hi) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        *intervals = merged;
    }

    pub(super) fn text(&self) -> String {
        let mut out = String::new();
        let mut last_uuid: Option<&str> = None;
        for ((uuid, tag), intervals) in &self.sets {
            if last_uuid != Some(uuid.as_str()) {
                if last_uuid.is_some() {
                    out.push(',');
                }
                out.push_str(uuid);
                last_uuid = Some(uuid);
            }
            if let Some(t) = tag {
                out.push(':');
                out.push_str(t);
            }
            for (a, b) in intervals {
                if a == b {
                    out.push_str(&format!(":{a}"));
                } else {
                    out.push_str(&format!(":{a}-{b}"));
                }
            }
        }
        out
    }
}

/// One transaction's GTID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Gtid {
    /// MariaDB `domain-server-seq`.
    Maria(MariaGtid),
    /// MySQL `uuid[:tag]:gno`.
    Mysql(MysqlGtid),
    /// MySQL without GTIDs.
    Anonymous,
}

/// The GTID state tracked across transactions.
#[derive(Debug, Clone, Default)]
pub(super) struct GtidState {
    /// MariaDB: the last GTID per domain.
    maria: Vec<MariaGtid>,
    /// MySQL: the executed set, advanced with each transaction.
    mysql: MysqlGtidSet,
}

impl GtidState {
    pub(super) fn parse(flavor: MysqlFlavor, text: Option<&str>) -> Self {
        let mut s = GtidState::default();
        match flavor {
            MysqlFlavor::Mariadb => {
                for part in text
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.is_empty())
                {
                    let mut it = part.trim().splitn(3, '-');
                    let (Some(d), Some(sv), Some(q)) = (it.next(), it.next(), it.next()) else {
                        continue;
                    };
                    if let (Ok(domain), Ok(server_id), Ok(seq)) = (d.parse(), sv.parse(), q.parse())
                    {
                        s.apply(MariaGtid {
                            domain,
                            server_id,
                            seq,
                        });
                    }
                }
            }
            MysqlFlavor::Mysql => s.mysql = MysqlGtidSet::parse(text.unwrap_or_default()),
        }
        s
    }

    pub(super) fn apply(&mut self, g: MariaGtid) {
        match self.maria.iter_mut().find(|x| x.domain == g.domain) {
            Some(x) => *x = g,
            None => {
                self.maria.push(g);
                self.maria.sort();
            }
        }
    }

    pub(super) fn text(&self) -> Option<Arc<str>> {
        if !self.maria.is_empty() {
            let parts: Vec<String> = self.maria.iter().map(|g| g.to_string()).collect();
            return Some(Arc::from(parts.join(",")));
        }
        let t = self.mysql.text();
        (!t.is_empty()).then(|| Arc::from(t))
    }

    /// Adds a finished transaction's GTID.
    pub(super) fn apply_pending(&mut self, g: Gtid) {
        match g {
            Gtid::Maria(g) => self.apply(g),
            Gtid::Mysql(g) => self.apply_mysql(&g),
            Gtid::Anonymous => {}
        }
    }

    pub(super) fn apply_mysql(&mut self, g: &MysqlGtid) {
        self.mysql
            .add(&binlog::format_uuid(&g.uuid), g.tag.as_deref(), g.gno);
    }
}

/// `domain-server-seq[,...]` with digits only (safe to put in a SET statement).
pub(super) fn valid_maria_state(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|p| {
            let parts: Vec<&str> = p.split('-').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_state_round_trip() {
        let mut s = GtidState::parse(MysqlFlavor::Mariadb, Some("0-1-10,2-5-3"));
        s.apply(MariaGtid {
            domain: 0,
            server_id: 1,
            seq: 11,
        });
        assert_eq!(s.text().as_deref(), Some("0-1-11,2-5-3"));
        assert!(valid_maria_state("0-1-11,2-5-3"));
        assert!(!valid_maria_state("0-1-1'; DROP"));
    }

    #[test]
    fn mysql_gtid_sets_advance() {
        let mut s = MysqlGtidSet::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7, aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa:1:tg:1-2");
        s.add("3e11fa47-71ca-11e1-9e33-c80aa9429562", None, 6);
        s.add("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", Some("tg"), 3);
        assert_eq!(
            s.text(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7,aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa:1:tg:1-3"
        );
    }
}
