//! The logging capability of protocol versions before 2026-07-28: a
//! client sets a level with `logging/setLevel`, and the warnings a tool
//! call produces (Prometheus's warnings, the guardrails', a truncated
//! answer) are also sent to it as `notifications/message` at or above that
//! level. Nothing is sent before a client asks. The level belongs to one
//! session.
#![allow(deprecated)] // rmcp marks logging deprecated (SEP-2577); clients before 2026-07-28 use it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use rmcp::RoleServer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::RequestContext;
use serde_json::json;

use crate::tools::ToolOutput;

/// No level set yet: send nothing.
const UNSET: u8 = u8::MAX;

/// One session's logging level.
#[derive(Clone, Debug)]
pub struct SessionLog(Arc<AtomicU8>);

impl Default for SessionLog {
    fn default() -> Self {
        Self(Arc::new(AtomicU8::new(UNSET)))
    }
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl SessionLog {
    /// `logging/setLevel`.
    pub fn set(&self, level: LoggingLevel) {
        self.0.store(rank(level), Ordering::Relaxed);
    }

    /// Whether a message at `level` goes out.
    fn wants(&self, level: LoggingLevel) -> bool {
        let set = self.0.load(Ordering::Relaxed);
        set != UNSET && rank(level) >= set
    }

    /// Sends a finished call's warnings to the client, if it asked.
    pub async fn tool_warnings(
        &self,
        tool: &str,
        output: &ToolOutput,
        context: &RequestContext<RoleServer>,
    ) {
        if !self.wants(LoggingLevel::Warning) {
            return;
        }
        let truncated = output.truncated.then(|| {
            format!(
                "the answer was truncated{}",
                output.hint.map(|h| format!(": {h}")).unwrap_or_default()
            )
        });
        let guardrails = output
            .guardrails
            .iter()
            .map(|d| format!("guardrail {} ({}): {}", d.rule, d.action.as_str(), d.detail));
        let warnings = guardrails.chain(output.warnings.iter().cloned());
        for warning in warnings.chain(truncated) {
            let message = LoggingMessageNotificationParam::new(
                LoggingLevel::Warning,
                json!({"tool": tool, "upstream": output.upstream, "warning": warning}),
            )
            .with_logger("mcp-prometheus");
            if let Err(error) = context.peer.notify_logging_message(message).await {
                tracing::debug!(%error, "logging notification not sent");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_before_set_level_then_at_or_above_it() {
        let log = SessionLog::default();
        assert!(!log.wants(LoggingLevel::Emergency));
        log.set(LoggingLevel::Warning);
        assert!(log.wants(LoggingLevel::Warning) && log.wants(LoggingLevel::Error));
        assert!(!log.wants(LoggingLevel::Info));
        log.set(LoggingLevel::Error);
        assert!(!log.wants(LoggingLevel::Warning));
    }
}
