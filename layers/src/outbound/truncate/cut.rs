//! The scanner's policy: which values are items, what the budget allows, and
//! where to cut so that `out` plus its closing brackets is valid JSON.

use bytes::Bytes;

use super::scanner::{DataState, Frame, Lex, MAX_DEPTH, Scanner};
use super::{Truncation, TruncationReason};

/// Room granted after `data` for the envelope's tail (`warnings`, `infos`),
/// even when `data` spent the whole budget: they explain partial answers.
pub const TAIL_BYTES: usize = 4096;

#[cfg(test)]
thread_local! {
    /// The last finished scanner's peak buffer, for the memory tests.
    pub(super) static LAST_PEAK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Scanner {
    /// Bytes that may still be written, keeping room for every closing
    /// bracket and for the quote closing the current string.
    pub(super) fn room(&self) -> usize {
        let reserved = self.stack.len() + usize::from(self.in_string());
        self.limit.saturating_sub(self.len() + reserved)
    }

    /// Writes `b` if keeping and `need` bytes fit (the byte and what it
    /// opens); otherwise the budget is spent here.
    pub(super) fn put(&mut self, b: u8, need: usize) {
        if self.skip.is_some() {
            return;
        }
        if need <= self.room() {
            self.push(b);
        } else {
            self.overflow(TruncationReason::Bytes);
        }
    }

    /// Writes `b` unconditionally: for closing quotes and brackets, whose
    /// room is always reserved.
    pub(super) fn push(&mut self, b: u8) {
        self.reserve(1);
        self.out.push(b);
    }

    /// Grows `out` geometrically but never past the limit, so the buffer
    /// stays O(budget) rather than O(2 × budget).
    pub(super) fn reserve(&mut self, n: usize) {
        let need = self.out.len() + n;
        if need > self.out.capacity() {
            let target = (self.out.capacity() * 2)
                .max(need)
                .max(1024)
                .min(self.limit.max(need));
            self.out.reserve_exact(target - self.out.len());
            self.peak = self.peak.max(self.out.capacity());
        }
    }

    /// Copies input that is not JSON as-is, up to the budget, so the caller
    /// can show what the upstream sent.
    pub(super) fn raw(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.limit.saturating_sub(self.len()));
        self.reserve(n);
        self.out.extend_from_slice(&bytes[..n]);
        if n < bytes.len() {
            self.raw_full = true;
            self.truncated = true;
            self.reason.get_or_insert(TruncationReason::Bytes);
        }
    }

    /// A value starts with byte `b` (not yet consumed). Returns `false` when
    /// `b` cannot start a value.
    pub(super) fn value_start(&mut self, b: u8) -> bool {
        let opens = matches!(b, b'{' | b'[');
        let valid = matches!(
            b,
            b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n'
        );
        if !valid || (opens && self.stack.len() >= MAX_DEPTH) {
            self.invalid();
            return false;
        }
        let depth = self.stack.len();
        let is_data = self.data == DataState::NotSeen
            && match self.stack.first() {
                None => b != b'{',
                Some(root) => depth == 1 && !root.array && self.key_is_data,
            };
        if is_data {
            self.data = DataState::In;
            self.data_depth = depth;
        }
        let mut in_data_object = false;
        if let Some(top) = self.stack.last_mut() {
            in_data_object = top.data && !top.array;
            if top.list {
                top.child_open = true;
                if self.skip.is_some() {
                    self.dropped_items += 1;
                } else if self.kept_items >= self.max_items {
                    self.overflow(TruncationReason::Items);
                }
            }
        }
        self.put(b, if opens || b == b'"' { 2 } else { 1 });
        match b {
            b'{' | b'[' => {
                let array = b == b'[';
                self.stack.push(Frame {
                    array,
                    list: array && (is_data || in_data_object),
                    data: is_data,
                    child_open: false,
                    kept: 0,
                    commit: self.len(),
                });
                self.lex = if array {
                    Lex::ValueOrClose
                } else {
                    Lex::KeyOrClose
                };
            }
            b'"' => self.string_start(false),
            b't' => self.lex = Lex::Literal(b"true", 1),
            b'f' => self.lex = Lex::Literal(b"false", 1),
            b'n' => self.lex = Lex::Literal(b"null", 1),
            _ => self.lex = Lex::Number,
        }
        true
    }

    /// The value just read (a scalar, or a container already popped) ended.
    pub(super) fn value_end(&mut self) {
        let depth = self.stack.len();
        match self.skip {
            // The dropped (or already closed) child is over: keep again.
            Some(resume) if resume == depth => self.skip = None,
            Some(_) => {}
            None => {
                let len = self.len();
                if let Some(top) = self.stack.last_mut() {
                    top.kept += 1;
                    top.commit = len;
                    if top.list {
                        self.kept_items += 1;
                    }
                }
            }
        }
        if let Some(top) = self.stack.last_mut() {
            top.child_open = false;
        }
        if self.data == DataState::In && depth == self.data_depth {
            self.data = DataState::Done;
            self.limit = self.limit.max(self.len() + TAIL_BYTES);
        }
        self.lex = if depth == 0 {
            Lex::Done
        } else {
            Lex::AfterValue
        };
    }

    /// The budget is spent (bytes) or the next item is one too many (items):
    /// cut `out` back to a point where closing gives valid JSON, and skip.
    pub(super) fn overflow(&mut self, reason: TruncationReason) {
        self.truncated = true;
        self.reason.get_or_insert(reason);
        if self.data == DataState::In {
            let data = self.data_depth;
            if (self.kept_items > 0 || reason == TruncationReason::Items) && data < self.stack.len()
            {
                self.list_cut(data);
            } else {
                self.deep_cut(data);
            }
        } else if let Some(root) = self.stack.first() {
            // Outside `data`: drop the envelope member being read.
            self.cut(root.commit, 1, 1, false);
        } else {
            self.skip = Some(0);
        }
    }

    /// Cuts after the last kept item of the innermost result list; a list
    /// that kept nothing is dropped with its member of `data`.
    fn list_cut(&mut self, data: usize) {
        let open = match self.innermost_list() {
            Some(i) if self.stack[i].kept > 0 || self.stack[i].data => i + 1,
            _ => data + 1,
        };
        self.cut(self.stack[open - 1].commit, open, data, false);
    }

    /// Nothing fitted before a single item (or the scalar `data`) outgrew the
    /// budget: keep as much of it as can be closed validly.
    fn deep_cut(&mut self, data: usize) {
        let top = self.stack.len();
        let from = self.innermost_list().map_or(data, |i| i + 1);
        // After the last complete element of a nested container, e.g. the
        // `values` of one huge series. While a scalar is being read, its own
        // container is passed over: cutting it would leave half a sample,
        // like `[1700000000]` without its value.
        let scalar = self.in_string() || matches!(self.lex, Lex::Number | Lex::Literal(..));
        for i in (from..top - usize::from(scalar && top > 0)).rev() {
            if self.stack[i].kept > 0 {
                return self.cut(self.stack[i].commit, i + 1, data, false);
            }
        }
        // Inside a long string, e.g. `data.yaml` of the config endpoint.
        if self.in_string() && !self.str_key {
            let pos = self.string_cut_pos();
            return self.cut(pos, top, data, true);
        }
        if top > data {
            return self.cut(self.stack[top - 1].commit, top, data, false);
        }
        // `data` is a number or literal longer than the budget.
        match data.checked_sub(1).and_then(|i| self.stack.get(i)) {
            Some(root) => self.cut(root.commit, data, data, false),
            None => {
                self.out.clear();
                self.skip = Some(0);
            }
        }
    }

    /// Truncates `out` to `pos` (closing the string if `string`), where the
    /// first `open` containers are open; closes those deeper than `resume`
    /// and skips until the current child of container `resume` ends.
    fn cut(&mut self, pos: usize, open: usize, resume: usize, string: bool) {
        if let Some(i) = self.innermost_list()
            && self.stack[i].child_open
        {
            if string || open > i + 1 {
                self.kept_items += 1;
            } else {
                self.dropped_items += 1;
            }
        }
        self.out.truncate(pos.saturating_sub(self.base));
        if string {
            self.push(b'"');
        }
        for i in (resume..open).rev() {
            let close = if self.stack[i].array { b']' } else { b'}' };
            self.push(close);
        }
        let len = self.len();
        if (string || open > resume)
            && let Some(parent) = resume.checked_sub(1).and_then(|i| self.stack.get_mut(i))
        {
            parent.kept += 1;
            parent.commit = len;
        }
        self.surrogate = None;
        self.skip = Some(resume);
    }

    pub(super) fn innermost_list(&self) -> Option<usize> {
        self.stack.iter().rposition(|frame| frame.list)
    }

    /// Where the current string can end: not inside an escape, not after a
    /// lone high surrogate, not inside a multibyte UTF-8 character.
    fn string_cut_pos(&self) -> usize {
        let mut pos = self.len();
        if matches!(self.lex, Lex::Escape | Lex::Unicode(_)) {
            pos = self.esc_start;
        }
        if let Some((start, end)) = self.surrogate
            && end == pos
        {
            pos = start;
        }
        let mut lead = pos;
        while lead > self.str_start && pos - lead < 3 && self.kept_byte(lead - 1) & 0xC0 == 0x80 {
            lead -= 1;
        }
        if lead > self.str_start {
            let width = match self.kept_byte(lead - 1) {
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            if pos - (lead - 1) < width {
                pos = lead - 1;
            }
        }
        pos
    }

    /// The kept JSON and the record of what was dropped. `eof` says the body
    /// was read to its end; otherwise reading stopped at the scan limit.
    pub(super) fn finish(mut self, eof: bool) -> (Bytes, Truncation) {
        if self.lex != Lex::Invalid {
            let started = self.data != DataState::NotSeen || !self.stack.is_empty();
            if eof {
                if self.lex == Lex::Number && self.stack.is_empty() {
                    self.value_end();
                }
                // Anything but `Done` here means the upstream's body ended
                // mid-document: the kept bytes go out as they are.
            } else if self.lex != Lex::Done && started {
                if self.skip.is_none() {
                    self.overflow(TruncationReason::Bytes);
                }
                for i in (0..self.skip.unwrap_or(0)).rev() {
                    let close = if self.stack[i].array { b']' } else { b'}' };
                    self.push(close);
                }
            }
        }
        #[cfg(test)]
        LAST_PEAK.with(|peak| peak.set(self.peak));
        let truncation = Truncation {
            truncated: self.truncated,
            kept_items: self.kept_items,
            dropped_items_at_least: self.dropped_items,
            bytes_seen: self.bytes_seen,
            scan_complete: eof,
            reason: self.reason,
        };
        (Bytes::from(self.out), truncation)
    }
}
