//! The process's allocator: mimalloc instead of glibc's malloc. A tool
//! call allocates and frees thousands of small blocks (JSON values,
//! strings, headers), and glibc's paths cost several times mimalloc's per
//! block (bench/instructions.py).

/// The global allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the option enum of mimalloc v2 and v3
/// (`mimalloc.h`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed pages stay resident before mimalloc gives them back:
/// 100 ms rather than v3's second. One call over 10k series goes through
/// phases (series read, summaries, the answer's text and JSON) that each
/// free what the one before used; a second later is after the call, so
/// every phase's pages were resident together. Peak RSS over four such
/// calls (bench/bench.py's range data): 52 MiB with 100 ms, 44 MiB with
/// 10 ms, 36 MiB with 0; 60 MiB after two calls with 1 s. Shorter delays
/// give pages back between ordinary calls too, to fault them in again on
/// the next one.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Sets [`PURGE_DELAY_MS`]; called first thing in `main`.
pub fn purge_freed_memory_soon() {
    // SAFETY: `mi_version` reads a constant; `mi_option_set` sets a plain
    // integer option before any other thread exists (mimalloc reads options
    // with atomic loads). The option's number is that of v2 and v3: another
    // major version keeps its default.
    unsafe {
        if matches!(libmimalloc_sys::mi_version() / 10_000, 2 | 3) {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // SAFETY: reads of mimalloc's version and options.
        let (version, before) = unsafe {
            (
                libmimalloc_sys::mi_version(),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
            )
        };
        assert!(
            matches!(version / 10_000, 2 | 3),
            "mimalloc {version}: check the option's number"
        );
        // purge_delay's default (ms) is 10 in v2 and 1000 in v3: another
        // option has another one.
        assert!(
            matches!(before, 10 | 1000),
            "option {} is not purge_delay ({before})",
            super::MI_OPTION_PURGE_DELAY
        );
        super::purge_freed_memory_soon();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, super::PURGE_DELAY_MS);
    }
}
