//! An answer written in pieces: a tool result of megabytes (a 10k-series
//! summary) is serialized into fixed-size chunks sent as body frames,
//! instead of one buffer that doubles as it grows (copying itself each
//! time and holding up to twice its size).

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};

use super::fast_call::McpBody;

/// The size of a full chunk; a small answer stays in one smaller buffer.
const CHUNK: usize = 64 << 10;

/// A [`io::Write`] collecting what is written as a list of chunks.
#[derive(Debug, Default)]
pub struct ChunkedWriter {
    done: Vec<Bytes>,
    current: Vec<u8>,
    len: usize,
}

impl io::Write for ChunkedWriter {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    /// serde_json writes an answer a few bytes at a time: the common case,
    /// room in the current chunk, is one copy.
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.len += buf.len();
        if buf.len() <= CHUNK - self.current.len() {
            self.current.extend_from_slice(buf);
        } else {
            self.write_across(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ChunkedWriter {
    /// Fills the current chunk, sets it aside and goes on in new ones.
    fn write_across(&mut self, mut buf: &[u8]) {
        while !buf.is_empty() {
            if self.current.len() == CHUNK {
                let full = std::mem::replace(&mut self.current, Vec::with_capacity(CHUNK));
                self.done.push(Bytes::from(full));
            }
            let (now, later) = buf.split_at(buf.len().min(CHUNK - self.current.len()));
            self.current.extend_from_slice(now);
            buf = later;
        }
    }
}

impl ChunkedWriter {
    /// How many bytes were written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Takes back the last byte written (`None` when nothing was): the
    /// last chunk is only set aside once more is written, so the byte is
    /// still in `current`.
    pub fn pop(&mut self) -> Option<u8> {
        let byte = self.current.pop()?;
        self.len -= 1;
        Some(byte)
    }

    /// The chunks as a body: one frame each.
    pub fn into_body(mut self) -> McpBody {
        if self.done.is_empty() {
            return Full::new(Bytes::from(self.current)).boxed();
        }
        self.done.push(Bytes::from(self.current));
        let frames = self
            .done
            .into_iter()
            .map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
        StreamBody::new(futures_util::stream::iter(frames)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[tokio::test]
    async fn what_is_written_comes_back_in_order_in_bounded_chunks() {
        for size in [0, 10, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut writer = ChunkedWriter::default();
            for piece in data.chunks(777) {
                writer.write_all(piece).expect("written");
            }
            assert_eq!(writer.len(), size);
            if size > 0 {
                assert_eq!(writer.pop(), data.last().copied(), "size {size}");
                writer.write_all(&data[size - 1..]).expect("written");
            }
            let mut body = writer.into_body();
            let mut joined = Vec::new();
            while let Some(frame) = body.frame().await {
                let chunk = frame.expect("infallible").into_data().expect("data");
                assert!(chunk.len() <= CHUNK, "{}", chunk.len());
                joined.extend_from_slice(&chunk);
            }
            assert_eq!(joined, data, "size {size}");
        }
    }
}
