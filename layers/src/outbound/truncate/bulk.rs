//! The bulk path: a whole result item copied in one go.
//!
//! Most of a big answer is the items of its result list (series, samples,
//! label values), each well inside the budget. The byte-wise lexer spends
//! some 35 instructions a byte on them; here an item that starts and ends
//! in the same chunk and fits the room left is found by a structural scan
//! (brackets outside strings, strings skipped to their quote)
//! and copied whole. The scanner's state afterwards is what the lexer would
//! have reached: the item kept and committed, the list's count one up.
//!
//! Anything else (an item crossing a chunk, one too big or too many, a
//! control byte in a string, nesting past `MAX_DEPTH`) is left to the
//! lexer, which judges and cuts it as before. The scan checks brackets and
//! strings, not full JSON grammar: a malformed item inside a well-formed
//! envelope is copied as sent and refused by the parser that reads the
//! answer, as the lexer's raw copy would be.

use super::scanner::{Lex, MAX_DEPTH, Scanner};

impl Scanner {
    /// Copies the list item starting at `chunk[start]` if the bulk path
    /// can take it; returns the index after it.
    pub(super) fn bulk_item(&mut self, chunk: &[u8], start: usize) -> Option<usize> {
        if !matches!(self.lex, Lex::Value | Lex::ValueOrClose)
            || self.skip.is_some()
            || self.kept_items >= self.max_items
            || !self.stack.last().is_some_and(|top| top.list)
        {
            return None;
        }
        let rest = chunk.get(start..)?;
        if !matches!(rest.first(), Some(b'{' | b'[')) {
            return None;
        }
        let len = item_len(rest, MAX_DEPTH.checked_sub(self.stack.len())?)?;
        if len > self.room() {
            return None;
        }
        let item = rest.get(..len)?;
        self.reserve(len);
        self.out.extend_from_slice(item);
        self.value_end();
        Some(start + len)
    }
}

/// Length of the container at the start of `bytes` (through its closing
/// bracket), if it ends within `bytes`, nests at most `max_depth` deep and
/// has no control byte inside a string.
fn item_len(bytes: &[u8], max_depth: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return None;
                }
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'"' => i = string_end(bytes, i + 1)?,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the quote closing the string whose contents start at `from`.
/// A plain loop: most strings of an answer (sample values, label values)
/// are a few bytes long, shorter than `memchr`'s set-up pays for.
fn string_end(bytes: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let rest = bytes.get(from..)?;
        let at = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        match rest.get(at)? {
            b'"' => return Some(from + at),
            // an escape: its next byte is never the closing quote
            b'\\' => from += at + 2,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_nested_items_and_skips_strings() {
        assert_eq!(item_len(br#"{"a":[1,"]"],"b":{}},"#, 10), Some(20));
        assert_eq!(item_len(br#"[1,"x\"]"]]"#, 10), Some(10));
        assert_eq!(item_len(br#"["\\"],"#, 10), Some(6));
        assert_eq!(item_len(br"[]", 10), Some(2));
    }

    #[test]
    fn leaves_incomplete_deep_or_odd_items_to_the_lexer() {
        assert_eq!(item_len(br#"{"a":[1,2"#, 10), None, "ends in the chunk");
        assert_eq!(item_len(br#"["abc"#, 10), None, "string ends in the chunk");
        assert_eq!(item_len(br#"["a\"#, 10), None, "escape ends in the chunk");
        assert_eq!(item_len(b"[[[[1]]]]", 3), None, "too deep");
        assert_eq!(
            item_len(b"[\"a\x01\"]", 10),
            None,
            "control byte in a string"
        );
        assert_eq!(item_len(b"]", 10), None, "a close first");
    }
}
