//! Build metadata for `mcp-prometheus version`: the git revision and the
//! build date, so a running image or bundle says exactly what it was built
//! from.
//!
//! * revision: `MCP_PROMETHEUS_REVISION` if set (the Dockerfile passes it,
//!   as its context has no `.git`), else `git rev-parse HEAD`, else
//!   "unknown" (a tarball without git);
//! * date: `SOURCE_DATE_EPOCH` if set (reproducible builds), else now; UTC,
//!   as YYYY-MM-DD.
//!
//! Cargo reruns this only when HEAD or the branch it points to moves (or
//! those variables change), so ordinary edits do not rebuild the crate for
//! it.

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MCP_PROMETHEUS_REVISION");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let revision = std::env::var("MCP_PROMETHEUS_REVISION")
        .ok()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=MCP_PROMETHEUS_GIT_REVISION={revision}");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    println!(
        "cargo:rustc-env=MCP_PROMETHEUS_BUILD_DATE={}",
        utc_date(epoch)
    );
}

/// `git rev-parse HEAD`, and the files whose change means a new revision.
fn git_revision() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let revision = git(&["rev-parse", "HEAD"])?;
    // HEAD itself (a checkout or a worktree) and the ref it names (commits).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(name) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &name]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    for path in watched.into_iter().flatten().map(PathBuf::from) {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(revision)
}

/// Seconds since the epoch as a UTC calendar date (Howard Hinnant's
/// days-to-civil algorithm; no date crate needed at build time).
fn utc_date(epoch: i64) -> String {
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
