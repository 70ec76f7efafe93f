//! The audit log (`[audit]`): one JSON line per tool call and per refused
//! authentication or authorization, naming who, which tenants, what, and
//! how it ended. Separate from the operational log: its own sink, and a
//! `log_type = "audit"` field when both share stderr.
//!
//! Writers are the deciders themselves: the inbound gates when they
//! refuse (through [`crate::inbound::gate`]), the rate limit, and the MCP
//! service for every tool call. Tokens, passwords and cookies never reach
//! a line: identities come from verified claims, arguments pass
//! [`event::redact`].

mod event;
mod sink;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use event::{AuditEvent, EventKind, cut, redact};
use sink::{RotatingFile, Sink};

/// `[audit]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub enabled: bool,
    pub sink: SinkKind,
    /// The file, with `sink = "file"`.
    pub path: Option<PathBuf>,
    /// Rotate the file beyond this size.
    pub max_bytes: u64,
    /// Argument strings longer than this are cut (the line stays bounded).
    pub max_argument_bytes: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            sink: SinkKind::Stderr,
            path: None,
            max_bytes: 100 * 1024 * 1024,
            max_argument_bytes: 8192,
        }
    }
}

/// Where the lines go.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    Stderr,
    File,
}

/// An audit config that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum AuditConfigError {
    #[error("audit.path: sink = \"file\" needs a path, e.g. /var/log/mcp-prometheus/audit.jsonl")]
    NoPath,
    #[error("audit.path: {path}: the directory {dir} does not exist")]
    NoDirectory { path: String, dir: String },
    #[error("audit.path: {path}: cannot open for appending: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("audit.max_bytes: at least 65536 (one rotation per few hundred lines at most)")]
    MaxBytes,
    #[error("audit.max_argument_bytes: between 64 and 1048576")]
    MaxArgumentBytes,
}

impl AuditConfig {
    /// Checks the settings without opening anything (what `check-config`
    /// runs; [`AuditConfig::build`] runs it too).
    pub fn check(&self) -> Result<(), AuditConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.max_bytes < 65536 {
            return Err(AuditConfigError::MaxBytes);
        }
        if !(64..=1024 * 1024).contains(&self.max_argument_bytes) {
            return Err(AuditConfigError::MaxArgumentBytes);
        }
        if self.sink == SinkKind::File {
            let path = self.path.as_ref().ok_or(AuditConfigError::NoPath)?;
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                return Err(AuditConfigError::NoDirectory {
                    path: path.display().to_string(),
                    dir: dir.display().to_string(),
                });
            }
        }
        Ok(())
    }

    /// The log, or `None` when switched off; opens the file.
    pub fn build(&self) -> Result<Option<AuditLog>, AuditConfigError> {
        self.check()?;
        if !self.enabled {
            return Ok(None);
        }
        let sink = match (&self.sink, &self.path) {
            (SinkKind::File, Some(path)) => {
                let file = RotatingFile::open(path, self.max_bytes).map_err(|source| {
                    AuditConfigError::Open {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
                Sink::File(Mutex::new(file))
            }
            _ => Sink::Stderr,
        };
        Ok(Some(AuditLog(Arc::new(Inner {
            sink,
            max_argument_bytes: self.max_argument_bytes,
        }))))
    }
}

/// The open audit log; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    sink: Sink,
    max_argument_bytes: usize,
}

impl AuditLog {
    /// The bound on argument strings (for [`redact`]).
    pub fn max_argument_bytes(&self) -> usize {
        self.0.max_argument_bytes
    }

    /// Writes `event` as one line. A failed write goes to the operational
    /// log; the audited request is not held up by it.
    pub fn record(&self, event: &AuditEvent) {
        let mut line = match serde_json::to_vec(event) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, "audit line not serialisable");
                return;
            }
        };
        line.push(b'\n');
        if let Err(error) = self.0.sink.write_line(&line) {
            tracing::error!(%error, "audit line not written");
        }
    }
}
