//! The incremental JSON scanner: a byte-by-byte state machine that accepts
//! the upstream body in chunks cut anywhere (inside strings, escapes or
//! multibyte characters) and copies what the budget allows into `out`.
//!
//! This file is the lexer: it tracks strings, escapes, numbers, literals and
//! the stack of open containers. What to keep and where to cut is decided in
//! `cut.rs`, through the hooks `value_start`, `value_end`, `put` and
//! `overflow`.

use super::TruncationReason;

/// Deeper nesting is treated as invalid JSON: no Prometheus answer comes
/// close, serde_json refuses it anyway, and it bounds the stack's memory.
pub(super) const MAX_DEPTH: usize = 128;

/// What the lexer expects next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lex {
    /// A value (after `:` or `,` in an array, or at the start).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// An object key (after `,` in an object).
    Key,
    /// An object key or `}` (just after `{`).
    KeyOrClose,
    /// The `:` after a key.
    Colon,
    /// `,` or the closing bracket of the innermost container.
    AfterValue,
    /// Inside a string.
    Str,
    /// After a backslash inside a string.
    Escape,
    /// Inside `\uXXXX`, with that many hex digits read.
    Unicode(u8),
    Number,
    /// Inside `true`, `false` or `null`, with that many bytes read.
    Literal(&'static [u8], u8),
    /// The top-level value is complete; only whitespace may follow.
    Done,
    /// Not JSON: what follows is copied raw until the budget is full.
    Invalid,
}

/// Where the scanner stands relative to the envelope's `data` member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DataState {
    NotSeen,
    In,
    Done,
}

/// One open container of the input.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame {
    pub(super) array: bool,
    /// A result list: its elements are the items we count and budget.
    pub(super) list: bool,
    /// This container is the envelope's `data` value.
    pub(super) data: bool,
    /// A child has started and not yet ended (only kept up to date for lists).
    pub(super) child_open: bool,
    /// Complete children written to `out`.
    pub(super) kept: usize,
    /// Length of `out` just after the last complete kept child (or after the
    /// opening bracket): cutting here and closing gives valid JSON.
    pub(super) commit: usize,
}

/// The incremental truncating scanner; see the module docs of `truncate`.
#[derive(Debug)]
pub(super) struct Scanner {
    /// Most bytes kept (handed over and in `out`), closing brackets included.
    pub(super) limit: usize,
    pub(super) max_items: usize,
    pub(super) out: Vec<u8>,
    /// Kept bytes already handed over (streamed): `out` starts there.
    pub(super) base: usize,
    /// Largest capacity `out` reached: the scanner's whole buffer.
    pub(super) peak: usize,
    pub(super) lex: Lex,
    pub(super) stack: Vec<Frame>,
    pub(super) str_key: bool,
    /// Position in `out` just after the opening quote of the current string.
    pub(super) str_start: usize,
    /// Position in `out` of the backslash of the current escape.
    pub(super) esc_start: usize,
    esc_code: u32,
    /// Span in `out` of a `\uD8xx` escape that ends the kept string so far: a
    /// cut right after it would leave a lone surrogate, which parsers refuse.
    pub(super) surrogate: Option<(usize, usize)>,
    /// How much of `data` the current top-level key matched; `None` once it
    /// differs.
    root_key: Option<usize>,
    pub(super) key_is_data: bool,
    /// While `Some(depth)`, input is read but not kept, until the current
    /// child of the container at that depth ends (or that container closes).
    pub(super) skip: Option<usize>,
    pub(super) data: DataState,
    /// Stack depth at which the `data` value sits (1 in an envelope).
    pub(super) data_depth: usize,
    pub(super) kept_items: usize,
    pub(super) dropped_items: usize,
    pub(super) truncated: bool,
    pub(super) reason: Option<TruncationReason>,
    pub(super) bytes_seen: u64,
    /// Invalid input filled the budget: nothing more is worth reading.
    pub(super) raw_full: bool,
}

impl Scanner {
    /// A scanner keeping at most `limit` bytes and `max_items` items.
    pub(super) fn new(limit: usize, max_items: usize) -> Self {
        Self {
            limit,
            max_items,
            out: Vec::new(),
            base: 0,
            peak: 0,
            lex: Lex::Value,
            stack: Vec::new(),
            str_key: false,
            str_start: 0,
            esc_start: 0,
            esc_code: 0,
            surrogate: None,
            root_key: None,
            key_is_data: false,
            skip: None,
            data: DataState::NotSeen,
            data_depth: 0,
            kept_items: 0,
            dropped_items: 0,
            truncated: false,
            reason: None,
            bytes_seen: 0,
            raw_full: false,
        }
    }

    /// Whether more input can change the result.
    pub(super) fn wants_more(&self) -> bool {
        !self.raw_full
    }

    /// Scans one chunk of the body.
    pub(super) fn feed(&mut self, chunk: &[u8]) {
        self.bytes_seen += chunk.len() as u64;
        let mut i = 0;
        while i < chunk.len() {
            match self.lex {
                Lex::Str => i = self.string_run(chunk, i),
                Lex::Number => i = self.number_run(chunk, i),
                Lex::Invalid => {
                    self.raw(&chunk[i..]);
                    return;
                }
                _ => {
                    if let Some(next) = self.bulk_item(chunk, i) {
                        i = next;
                        continue;
                    }
                    // `byte` refuses a byte only when it is not JSON: the
                    // state is then Invalid, so the loop moves on.
                    i += usize::from(self.byte(chunk[i]));
                }
            }
        }
    }

    pub(super) fn in_string(&self) -> bool {
        matches!(self.lex, Lex::Str | Lex::Escape | Lex::Unicode(_))
    }

    /// Consumes plain string bytes (the fast path: most of a Prometheus
    /// answer is label values) and the special byte that ends the run.
    fn string_run(&mut self, chunk: &[u8], start: usize) -> usize {
        let rest = &chunk[start..];
        let mut n = 0;
        while n < rest.len() {
            let b = rest[n];
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            n += 1;
        }
        if n > 0 {
            self.string_bytes(&rest[..n]);
        }
        let Some(&b) = rest.get(n) else {
            return chunk.len();
        };
        match b {
            b'"' => self.string_end(),
            b'\\' => {
                self.esc_start = self.len();
                self.root_key = None;
                self.lex = Lex::Escape;
                self.put(b, 1);
            }
            _ => {
                self.invalid();
                return start + n;
            }
        }
        start + n + 1
    }

    /// Consumes the digits of a number in one go (most of a range answer
    /// is timestamps); the byte that ends it is left for the next state.
    fn number_run(&mut self, chunk: &[u8], start: usize) -> usize {
        let rest = chunk.get(start..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(n);
        self.put_run(digits);
        if after.is_empty() {
            return chunk.len();
        }
        self.value_end();
        start + n
    }

    /// `put(b, 1)` for every byte of `run`, in one copy when it fits.
    fn put_run(&mut self, run: &[u8]) {
        if self.skip.is_some() || run.is_empty() {
            return;
        }
        if run.len() <= self.room() {
            self.reserve(run.len());
            self.out.extend_from_slice(run);
        } else {
            for &b in run {
                self.put(b, 1);
            }
        }
    }

    fn string_bytes(&mut self, run: &[u8]) {
        if self.str_key && self.stack.len() == 1 {
            self.root_key = self.root_key.and_then(|matched| {
                let end = matched + run.len();
                (b"data".get(matched..end) == Some(run)).then_some(end)
            });
        }
        if self.skip.is_some() {
            return;
        }
        let room = self.room();
        if run.len() <= room {
            self.reserve(run.len());
            self.out.extend_from_slice(run);
        } else {
            self.reserve(room);
            self.out.extend_from_slice(&run[..room]);
            self.overflow(TruncationReason::Bytes);
        }
    }

    /// Opens a string (value or key) whose quote has just been written.
    pub(super) fn string_start(&mut self, key: bool) {
        self.str_key = key;
        self.str_start = self.len();
        self.surrogate = None;
        if key && self.stack.len() == 1 {
            self.root_key = Some(0);
        }
        self.lex = Lex::Str;
    }

    fn string_end(&mut self) {
        // Leave the string state first: the closing quote's room is the one
        // reserved while inside the string.
        self.lex = Lex::Colon;
        if self.skip.is_none() {
            self.push(b'"');
        }
        if self.str_key {
            if self.stack.len() == 1 {
                self.key_is_data = self.root_key == Some(4);
            }
        } else {
            self.value_end();
        }
    }

    /// Handles one byte outside a plain string or number run. Returns
    /// `false` when the byte was not consumed: it is not JSON.
    fn byte(&mut self, b: u8) -> bool {
        let between_tokens = !matches!(
            self.lex,
            Lex::Str | Lex::Escape | Lex::Unicode(_) | Lex::Number | Lex::Literal(..)
        );
        if between_tokens && matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            // Whitespace is kept while it fits and silently dropped after:
            // it never changes what the JSON means.
            if self.skip.is_none() && self.room() > 0 {
                self.push(b);
            }
            return true;
        }
        match (self.lex, b) {
            (Lex::ValueOrClose, b']') | (Lex::KeyOrClose | Lex::AfterValue, b'}' | b']') => {
                return self.close(b);
            }
            (Lex::Value | Lex::ValueOrClose, _) => return self.value_start(b),
            (Lex::Key | Lex::KeyOrClose, b'"') => {
                self.put(b, 2);
                self.string_start(true);
            }
            (Lex::Colon, b':') => {
                self.lex = Lex::Value;
                self.put(b, 1);
            }
            (Lex::AfterValue, b',') => self.comma(),
            // Escape bytes are written while still in the escape state, so
            // a cut on them backs off to the backslash.
            (Lex::Escape, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.put(b, 1);
                self.lex = Lex::Str;
            }
            (Lex::Escape, b'u') => {
                self.put(b, 1);
                self.esc_code = 0;
                self.lex = Lex::Unicode(0);
            }
            (Lex::Unicode(read), _) => {
                let Some(digit) = char::from(b).to_digit(16) else {
                    self.invalid();
                    return false;
                };
                self.put(b, 1);
                self.esc_code = self.esc_code * 16 + digit;
                self.lex = if read == 3 {
                    Lex::Str
                } else {
                    Lex::Unicode(read + 1)
                };
                if read == 3 && (0xD800..0xDC00).contains(&self.esc_code) {
                    self.surrogate = Some((self.esc_start, self.len()));
                }
            }
            (Lex::Literal(word, read), _) if word.get(usize::from(read)) == Some(&b) => {
                self.put(b, 1);
                if usize::from(read) + 1 == word.len() {
                    self.value_end();
                } else {
                    self.lex = Lex::Literal(word, read + 1);
                }
            }
            _ => {
                self.invalid();
                return false;
            }
        }
        true
    }

    fn comma(&mut self) {
        let Some(top) = self.stack.last() else {
            self.invalid();
            return;
        };
        let (array, kept) = (top.array, top.kept);
        self.lex = if array { Lex::Value } else { Lex::Key };
        // A comma belongs to the next child: none is written while nothing
        // before it was kept (the previous children were dropped).
        if self.skip.is_none() && kept > 0 {
            self.put(b',', 1);
        }
    }

    fn close(&mut self, b: u8) -> bool {
        let depth = self.stack.len();
        if self.stack.last().map(|top| top.array) != Some(b == b']') {
            self.invalid();
            return false;
        }
        if self.skip == Some(depth) {
            self.skip = None;
        }
        if self.skip.is_none() {
            self.push(b);
        }
        self.stack.pop();
        self.value_end();
        true
    }

    pub(super) fn invalid(&mut self) {
        self.lex = Lex::Invalid;
    }
}
