//! How failures are classified where they arise, and the one policy that turns a class into
//! the runtime's action.
//!
//! Every error type a pipeline can end with implements [`Classify`]: it knows, at the point
//! where it is created, whether retrying can help ([`Severity::Transient`]: a connection
//! dropped, a broker or registry that is away) or not ([`Severity::Definite`]: a setting,
//! privilege, object or record that needs a person). [`action`] is the single place that maps
//! a class to what the runtime does, so "is this retried?" is answered once.
//!
//! Problems with how a server or its objects are set up are typed ([`SetupError`]) and
//! rendered into one sentence naming the setting, its value, what Sluice needs and the fix.

use std::fmt;

/// Whether retrying can fix a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// A reconnect after a backoff may succeed (a server or broker went away).
    Transient,
    /// Retrying cannot help: a person must change a setting, a privilege, an object or data.
    Definite,
}

impl Severity {
    /// `Transient` when `transient`, else `Definite`.
    pub fn transient_if(transient: bool) -> Self {
        if transient {
            Severity::Transient
        } else {
            Severity::Definite
        }
    }
}

/// An error that knows its [`Severity`].
pub trait Classify {
    /// Whether retrying can fix it.
    fn severity(&self) -> Severity;
}

/// What the runtime does after a pipeline run ended with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Restart from the committed position after a growing backoff.
    RetryWithBackoff,
    /// Stop the connector and show the error (which says what to fix) in its status.
    Stop,
}

/// The error policy: the one function that decides what a failure makes the runtime do.
/// Nothing is ever skipped: a failure either restarts from the committed position, which
/// re-reads everything not yet durable, or stops the connector.
pub fn action(error: &dyn Classify) -> Action {
    match error.severity() {
        Severity::Transient => Action::RetryWithBackoff,
        Severity::Definite => Action::Stop,
    }
}

/// The text of a caught panic's payload.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "(no message)".into()),
    }
}

/// A server, object or privilege not set up as a connector needs. Always definite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// A server setting has a value Sluice cannot work with.
    InvalidSetting {
        /// The setting (`wal_level`, `binlog_format`).
        setting: String,
        /// Its value on the server.
        actual: String,
        /// The value Sluice needs.
        expected: String,
        /// How to change it.
        fix: String,
    },
    /// The user lacks a privilege.
    MissingPrivilege {
        /// What is missing and what it is needed for.
        what: String,
        /// How to grant it.
        fix: String,
    },
    /// Anything else that needs a person (a missing table, a slot of another plugin, a
    /// stored position from another source): one sentence with the fix.
    Other(String),
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::InvalidSetting {
                setting,
                actual,
                expected,
                fix,
            } => write!(f, "{setting} is {actual}; Sluice needs {expected}: {fix}"),
            SetupError::MissingPrivilege { what, fix } => write!(f, "{what}: {fix}"),
            SetupError::Other(text) => f.write_str(text),
        }
    }
}

impl std::error::Error for SetupError {}

impl From<String> for SetupError {
    fn from(text: String) -> Self {
        SetupError::Other(text)
    }
}

impl Classify for SetupError {
    fn severity(&self) -> Severity {
        Severity::Definite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_setting_renders_setting_value_need_and_fix() {
        let e = SetupError::InvalidSetting {
            setting: "binlog_format".into(),
            actual: "STATEMENT".into(),
            expected: "ROW".into(),
            fix: "run SET GLOBAL binlog_format = 'ROW'".into(),
        };
        assert_eq!(
            e.to_string(),
            "binlog_format is STATEMENT; Sluice needs ROW: run SET GLOBAL binlog_format = 'ROW'"
        );
        assert_eq!(action(&e), Action::Stop);
    }

    #[test]
    fn transient_retries_definite_stops() {
        struct E(Severity);
        impl Classify for E {
            fn severity(&self) -> Severity {
                self.0
            }
        }
        assert_eq!(action(&E(Severity::Transient)), Action::RetryWithBackoff);
        assert_eq!(action(&E(Severity::Definite)), Action::Stop);
    }
}
