//! The record the layer leaves on every answer it processed: what was kept,
//! what was dropped and why; tools read it instead of counting again.

/// Why an answer was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncationReason {
    /// The kept JSON reached the byte budget.
    Bytes,
    /// The item limit was reached.
    Items,
}

/// Response extension on every 2xx JSON answer the layer processed, so the
/// caller can tell the user what is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// Something of the answer is missing from the body.
    pub truncated: bool,
    /// Items in the kept JSON (a partially kept item counts).
    pub kept_items: usize,
    /// Items seen and dropped; more may follow if the scan was incomplete.
    pub dropped_items_at_least: usize,
    /// Bytes of the upstream body read.
    pub bytes_seen: u64,
    /// `false` if reading stopped at `max_scan_bytes` before the end.
    pub scan_complete: bool,
    /// What stopped the keeping first, when something did.
    pub reason: Option<TruncationReason>,
}

impl Truncation {
    /// The record of two answers that make one (a fan-out over tenants):
    /// anything cut from either is cut from the whole.
    pub fn merge(self, other: Self) -> Self {
        Self {
            truncated: self.truncated | other.truncated,
            kept_items: self.kept_items + other.kept_items,
            dropped_items_at_least: self.dropped_items_at_least + other.dropped_items_at_least,
            bytes_seen: self.bytes_seen + other.bytes_seen,
            scan_complete: self.scan_complete & other.scan_complete,
            reason: self.reason.or(other.reason),
        }
    }
}
