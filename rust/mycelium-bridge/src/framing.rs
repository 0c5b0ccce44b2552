//! Reading and writing whole frames on a byte stream. The reader checks the announced
//! length against the connection's limit before reserving any memory and then grows its
//! buffer only as bytes arrive, so a peer that announces a large frame and sends nothing
//! holds no more than what it actually sent.

use std::io;

use bytes::{BufMut, Bytes};
use mycelium_protocol::{DecodeError, FrameHeader, FRAME_HEADER_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

/// Size of the buffered reader and writer. One read or write system call moves many small
/// frames.
const IO_BUFFER: usize = 64 * 1024;

/// First allocation for a payload; the buffer then doubles, never beyond the announced size.
const FIRST_CHUNK: usize = 64 * 1024;

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("the peer closed the connection in the middle of a frame ({received} of {expected} bytes received)")]
    Truncated { received: usize, expected: usize },
    #[error("the peer announced a frame of type {type_id:#06x} with {len} payload bytes; the limit is {max}")]
    TooLarge {
        type_id: u16,
        len: usize,
        max: usize,
    },
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
}

pub(crate) struct FrameReader<R> {
    inner: BufReader<R>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(IO_BUFFER, inner),
        }
    }

    /// The next frame, or `None` if the peer closed the stream between frames. Frames whose
    /// payload exceeds `max` are refused from the header alone.
    pub(crate) async fn read_frame(
        &mut self,
        max: usize,
    ) -> Result<Option<(u16, Bytes)>, FrameError> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        let mut filled = 0;
        while filled < FRAME_HEADER_LEN {
            let n = self.inner.read(&mut header[filled..]).await?;
            if n == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    received: filled,
                    expected: FRAME_HEADER_LEN,
                });
            }
            filled += n;
        }
        let header = FrameHeader::parse(&header).map_err(|e| match e {
            DecodeError::TooLarge { len, .. } => FrameError::TooLarge {
                type_id: u16::from_le_bytes([header[0], header[1]]),
                len,
                max,
            },
            // Six bytes always parse apart from the length check.
            other => FrameError::Io(io::Error::new(io::ErrorKind::InvalidData, other)),
        })?;
        let len = header.payload_len as usize;
        if len > max {
            return Err(FrameError::TooLarge {
                type_id: header.type_id,
                len,
                max,
            });
        }
        let mut payload: Vec<u8> = Vec::new();
        while payload.len() < len {
            if payload.len() == payload.capacity() {
                let target = (payload.capacity() * 2).clamp(FIRST_CHUNK.min(len), len);
                payload.reserve_exact(target - payload.len());
            }
            let room = payload.capacity().min(len) - payload.len();
            let n = self.inner.read_buf(&mut (&mut payload).limit(room)).await?;
            if n == 0 {
                return Err(FrameError::Truncated {
                    received: FRAME_HEADER_LEN + payload.len(),
                    expected: FRAME_HEADER_LEN + len,
                });
            }
        }
        Ok(Some((header.type_id, Bytes::from(payload))))
    }
}

pub(crate) struct FrameWriter<W> {
    inner: BufWriter<W>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        FrameWriter {
            inner: BufWriter::with_capacity(IO_BUFFER, inner),
        }
    }

    /// Buffers one frame; returns its size on the wire. The payload must already be within
    /// the wire format's limit (everything the bus or a control encoder produced is).
    pub(crate) async fn write_frame(&mut self, type_id: u16, payload: &[u8]) -> io::Result<usize> {
        let payload_len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "payload too large"))?;
        let header = FrameHeader {
            type_id,
            payload_len,
        };
        self.inner.write_all(&header.to_bytes()).await?;
        self.inner.write_all(payload).await?;
        Ok(FRAME_HEADER_LEN + payload.len())
    }

    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    /// Flushes and closes the sending direction, so the peer reads end-of-stream.
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn frames_round_trip_and_a_clean_close_is_none() {
        let (a, b) = duplex(1024);
        let mut writer = FrameWriter::new(a);
        let mut reader = FrameReader::new(b);
        let big = vec![7u8; 200_000];
        assert_eq!(writer.write_frame(3, b"abc").await.unwrap(), 9);
        writer.write_frame(4, &[]).await.unwrap();
        let task = tokio::spawn(async move {
            writer.write_frame(5, &big).await.unwrap();
            writer.shutdown().await.unwrap();
        });
        let (t, p) = reader.read_frame(1 << 20).await.unwrap().unwrap();
        assert_eq!((t, &p[..]), (3, &b"abc"[..]));
        let (t, p) = reader.read_frame(1 << 20).await.unwrap().unwrap();
        assert_eq!((t, p.len()), (4, 0));
        let (t, p) = reader.read_frame(1 << 20).await.unwrap().unwrap();
        assert_eq!((t, p.len()), (5, 200_000));
        assert!(p.iter().all(|&b| b == 7));
        assert!(reader.read_frame(1 << 20).await.unwrap().is_none());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn oversized_headers_are_refused_before_reading_the_payload() {
        let (mut a, b) = duplex(64);
        let mut reader = FrameReader::new(b);
        // 1000 bytes announced, limit 999; nothing else is ever sent.
        a.write_all(
            &FrameHeader {
                type_id: 1,
                payload_len: 1000,
            }
            .to_bytes(),
        )
        .await
        .unwrap();
        match reader.read_frame(999).await {
            Err(FrameError::TooLarge {
                type_id: 1,
                len: 1000,
                max: 999,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
        // Above the wire format's own 16 MiB limit.
        a.write_all(&[1, 0, 0xff, 0xff, 0xff, 0xff]).await.unwrap();
        let err = reader.read_frame(16 << 20).await.unwrap_err();
        assert!(
            matches!(
                err,
                FrameError::TooLarge {
                    len: 0xffff_ffff,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_close_inside_a_frame_is_truncation() {
        for cut in [3usize, 6, 8] {
            let (mut a, b) = duplex(64);
            let mut reader = FrameReader::new(b);
            let mut frame = FrameHeader {
                type_id: 1,
                payload_len: 4,
            }
            .to_bytes()
            .to_vec();
            frame.extend_from_slice(b"wxyz");
            a.write_all(&frame[..cut]).await.unwrap();
            drop(a);
            match reader.read_frame(64).await {
                Err(FrameError::Truncated { received, expected }) => {
                    assert_eq!(received, cut);
                    assert_eq!(expected, if cut < 6 { 6 } else { 10 });
                }
                other => panic!("cut {cut}: unexpected {other:?}"),
            }
        }
    }
}
