//! Durations as models write them: any text parses or is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_prometheus_layers::duration::parse_duration;

fuzz_target!(|text: &str| {
    let _ = parse_duration(text);
});
