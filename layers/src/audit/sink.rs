//! Where audit lines go: stderr (beside the operational log, told apart
//! by `log_type`), or a file that is rotated once it passes `max_bytes`
//! (the full file becomes `<path>.1`, the previous `.1` is replaced).
//! Writes are synchronous and short (one line, one `write_all`), behind a
//! mutex, so lines never interleave.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An open audit destination.
#[derive(Debug)]
pub enum Sink {
    Stderr,
    File(Mutex<RotatingFile>),
}

/// An append-only file with size-based rotation.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
}

impl RotatingFile {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path, max_bytes: u64) -> io::Result<Self> {
        let file = open_append(path)?;
        let written = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            written,
            max_bytes,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.written > 0 && self.written + line.len() as u64 > self.max_bytes {
            self.file.flush()?;
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            let renamed = std::fs::rename(&self.path, rotated);
            // Reopen whatever the rename did (the file may have been moved
            // away by logrotate): writing on must not depend on it.
            self.file = open_append(&self.path)?;
            self.written = self.file.metadata()?.len();
            renamed?;
        }
        self.file.write_all(line)?;
        self.written += line.len() as u64;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Audit lines name who asked what: not for every local user.
        options.mode(0o600);
    }
    options.open(path)
}

impl Sink {
    /// Writes one line (with its newline). A failed write is reported by
    /// the caller in the operational log; the request it audits goes on.
    pub fn write_line(&self, line: &[u8]) -> io::Result<()> {
        match self {
            Self::Stderr => {
                let mut stderr = io::stderr().lock();
                stderr.write_all(line)
            }
            Self::File(file) => match file.lock() {
                Ok(mut file) => file.write_line(line),
                Err(poisoned) => poisoned.into_inner().write_line(line),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_past_max_bytes_and_keeps_one_old_file() {
        let dir = std::env::temp_dir().join(format!("audit-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let sink = Sink::File(Mutex::new(RotatingFile::open(&path, 100).expect("open")));
        for i in 0..10 {
            sink.write_line(format!("{{\"line\":{i:030}}}\n").as_bytes())
                .expect("write");
        }
        let current = std::fs::read_to_string(&path).expect("current");
        let old = std::fs::read_to_string(dir.join("audit.jsonl.1")).expect("rotated");
        assert!(
            current.len() <= 100 && old.len() <= 100,
            "{current:?} {old:?}"
        );
        assert!(current.ends_with("9}\n"), "{current}");
        assert!(
            current
                .lines()
                .chain(old.lines())
                .all(|l| l.starts_with("{\"line\""))
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
