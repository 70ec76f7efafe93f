//! An upstream body collected without copying what arrives whole.

use bytes::{Bytes, BytesMut};

/// A body's frames, joined only when there are several: the truncate layer
/// hands over its kept answer as one frame, which is then taken as it is
/// instead of being copied (30 MB for a 10k-series range answer).
#[derive(Debug, Default)]
pub(super) enum Frames {
    #[default]
    None,
    One(Bytes),
    Many(BytesMut),
}

impl Frames {
    pub(super) fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::One(bytes) => bytes.len(),
            Self::Many(buffer) => buffer.len(),
        }
    }

    pub(super) fn push(&mut self, data: Bytes) {
        *self = match std::mem::take(self) {
            Self::None => Self::One(data),
            Self::One(first) => {
                let mut buffer = BytesMut::with_capacity(first.len() + data.len());
                buffer.extend_from_slice(&first);
                buffer.extend_from_slice(&data);
                Self::Many(buffer)
            }
            Self::Many(mut buffer) => {
                buffer.extend_from_slice(&data);
                Self::Many(buffer)
            }
        };
    }

    pub(super) fn into_bytes(self) -> Bytes {
        match self {
            Self::None => Bytes::new(),
            Self::One(bytes) => bytes,
            Self::Many(buffer) => buffer.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_is_taken_as_it_is() {
        let data = Bytes::from_static(b"{\"status\":\"success\"}");
        let mut frames = Frames::default();
        frames.push(data.clone());
        assert_eq!(frames.len(), data.len());
        let out = frames.into_bytes();
        assert_eq!(out, data);
        assert_eq!(out.as_ptr(), data.as_ptr(), "copied");
    }

    #[test]
    fn several_frames_are_joined_in_order() {
        let mut frames = Frames::default();
        assert_eq!(frames.len(), 0);
        for part in ["ab", "cd", "ef"] {
            frames.push(Bytes::from(part));
        }
        assert_eq!(frames.len(), 6);
        assert_eq!(frames.into_bytes(), Bytes::from("abcdef"));
        assert!(Frames::default().into_bytes().is_empty());
    }
}
