//! Random documents, budgets and chunkings: whatever is cut, the output is
//! valid JSON within the budget, and the same for every chunking.

use serde_json::{Map, Value, json};

use super::super::TAIL_BYTES;
use super::{scan, scan_streamed};

const ROUNDS: usize = 1500;

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn string(rng: &mut Rng) -> String {
    const PIECES: [&str; 9] = [
        "a", "value", "\"", "\\", "é", "😀", "\n", "\u{1}", "/api/v1",
    ];
    let len = [0, 1, 3, 20, 150][rng.below(5)];
    (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect()
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 4 { 4 } else { 7 }) {
        0 => json!(rng.below(1_000_000) as f64 / 7.0 - 1000.0),
        1 => [json!(true), json!(false), json!(null)][rng.below(3)].clone(),
        2 | 3 => json!(string(rng)),
        4 | 5 => Value::Array((0..rng.below(12)).map(|_| value(rng, depth + 1)).collect()),
        _ => Value::Object(
            (0..rng.below(6))
                .map(|i| (format!("{}{i}", string(rng)), value(rng, depth + 1)))
                .collect::<Map<_, _>>(),
        ),
    }
}

/// A Prometheus-like envelope around random data, or a bare random value.
fn document(rng: &mut Rng) -> String {
    let data = match rng.below(4) {
        0 => Value::Array((0..rng.below(60)).map(|_| value(rng, 2)).collect()),
        1 => {
            let list =
                |rng: &mut Rng| Value::Array((0..rng.below(40)).map(|_| value(rng, 3)).collect());
            json!({"resultType": "matrix", "result": list(rng), "other": list(rng), "stats": value(rng, 2)})
        }
        2 => value(rng, 1),
        _ => return value(rng, 0).to_string(),
    };
    let warnings = Value::Array((0..rng.below(4)).map(|_| json!(string(rng))).collect());
    let text = format!(r#"{{"status":"success","data":{data},"warnings":{warnings}}}"#);
    if rng.below(4) == 0 {
        let parsed: Value = serde_json::from_str(&text).expect("valid");
        return serde_json::to_string_pretty(&parsed).expect("pretty");
    }
    text
}

#[test]
fn random_documents_always_give_valid_json() {
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    for round in 0..ROUNDS {
        let input = document(&mut rng);
        let original: Value = serde_json::from_str(&input).expect("generated JSON");
        let max_bytes = 1024 + rng.below(input.len().max(1));
        let max_items = [0, 1, 5, 30, usize::MAX][rng.below(5)];
        let whole = scan(input.as_bytes(), max_bytes, max_items, input.len());
        // One byte at a time no item fits a chunk: the lexer alone, against
        // which the bulk path (whole items within a chunk) must agree.
        assert_eq!(
            scan(input.as_bytes(), max_bytes, max_items, 1),
            whole,
            "round {round}: bulk path and lexer differ"
        );
        let chunk = 1 + rng.below(40);
        assert_eq!(
            scan(input.as_bytes(), max_bytes, max_items, chunk),
            whole,
            "round {round} chunk {chunk}"
        );
        assert_eq!(
            scan_streamed(input.as_bytes(), max_bytes, max_items, chunk),
            whole,
            "round {round} chunk {chunk}: streamed"
        );
        let (bytes, truncation) = whole;
        let output: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "round {round} ({max_bytes}, {max_items}): {e}\n{input}\n=> {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(bytes.len() <= max_bytes + TAIL_BYTES, "round {round}");
        if !truncation.truncated {
            assert_eq!(output, original, "round {round}");
        }
        assert!(truncation.scan_complete);
        assert_eq!(truncation.bytes_seen, input.len() as u64);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(500))]

    /// Arbitrary bytes (not JSON at all, or almost): the scanner keeps at
    /// most the budget plus the tail, and never panics.
    #[test]
    fn arbitrary_bytes_are_cut_within_the_budget(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096),
        prefix in proptest::prop_oneof![
            proptest::prelude::Just(&b""[..]),
            proptest::prelude::Just(&br#"{"status":"success","data":{"result":["#[..]),
            proptest::prelude::Just(&br#"{"data":"#[..]),
        ],
        max_bytes in 1024usize..3000,
        max_items in 1usize..50,
        chunk in 1usize..700,
    ) {
        let input: Vec<u8> = prefix.iter().copied().chain(bytes).collect();
        let (out, record) = scan(&input, max_bytes, max_items, chunk);
        proptest::prop_assert!(out.len() <= max_bytes + TAIL_BYTES);
        proptest::prop_assert_eq!((out, record), scan_streamed(&input, max_bytes, max_items, chunk));
    }
}
