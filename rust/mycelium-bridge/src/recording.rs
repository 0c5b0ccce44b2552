//! The file format of `mycelium record` and `mycelium replay` (documented in docs/cli.md).
//!
//! ```text
//! MYCELIUM-RECORDING 1\n                        magic and format version
//! {"schema_digest": "...", "schema_canonical": "...", "started_unix_ns": N}\n
//! then per message, little-endian:
//!   u64 ns since the recording started | u16 type id | u32 payload length | payload
//! ```
//!
//! The header carries the schema's canonical text, so a replay against another schema can
//! say exactly which messages differ. Records are appended as they arrive, so a recording cut
//! short (a killed recorder) is readable up to its last complete record.

use std::io::{self, BufRead, Read, Write};

use mycelium_protocol::codec::MAX_PAYLOAD;
use serde::{Deserialize, Serialize};

/// First line of every recording.
pub const MAGIC: &str = "MYCELIUM-RECORDING 1";

/// The recording's header (its second line, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Digest of the schema the messages were validated against.
    pub schema_digest: String,
    /// That schema's canonical description (for a precise diff at replay).
    pub schema_canonical: String,
    /// Wall-clock start of the recording, ns since the Unix epoch.
    pub started_unix_ns: u64,
}

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Nanoseconds since the recording started.
    pub offset_ns: u64,
    /// The message's type id.
    pub type_id: u16,
    /// The TLV payload, as validated when it was received.
    pub payload: Vec<u8>,
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file does not start with [`MAGIC`].
    #[error("not a mycelium recording (it does not start with {MAGIC:?})")]
    NotARecording,
    /// The header line is not the expected JSON.
    #[error("the recording's header is not valid: {0}")]
    BadHeader(String),
    /// A record claims more than the maximum payload.
    #[error("record {index} claims a payload of {len} bytes, more than the maximum {MAX_PAYLOAD}")]
    TooLarge {
        /// 0-based record number.
        index: u64,
        /// The claimed length.
        len: u32,
    },
}

/// Writes the magic line and the header.
pub fn write_header(out: &mut impl Write, header: &Header) -> Result<(), RecordingError> {
    let json =
        serde_json::to_string(header).map_err(|e| RecordingError::BadHeader(e.to_string()))?;
    writeln!(out, "{MAGIC}")?;
    writeln!(out, "{json}")?;
    Ok(())
}

/// Appends one record.
pub fn write_record(out: &mut impl Write, record: &Record) -> Result<(), RecordingError> {
    let len = u32::try_from(record.payload.len()).map_err(|_| RecordingError::TooLarge {
        index: 0,
        len: u32::MAX,
    })?;
    out.write_all(&record.offset_ns.to_le_bytes())?;
    out.write_all(&record.type_id.to_le_bytes())?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&record.payload)?;
    Ok(())
}

/// Reads a recording: its header, then records one by one.
pub struct Reader<R> {
    input: R,
    header: Header,
    index: u64,
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the magic line and the header.
    pub fn new(mut input: R) -> Result<Self, RecordingError> {
        let mut line = String::new();
        // Bounded: a file that is not a recording may have no newline at all.
        (&mut input).take(256).read_line(&mut line)?;
        if line.trim_end() != MAGIC {
            return Err(RecordingError::NotARecording);
        }
        line.clear();
        (&mut input).take(64 << 20).read_line(&mut line)?;
        let header: Header =
            serde_json::from_str(&line).map_err(|e| RecordingError::BadHeader(e.to_string()))?;
        Ok(Reader {
            input,
            header,
            index: 0,
        })
    }

    /// The recording's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record; `None` at the end, or after a last record that was cut short.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecordingError> {
        let mut fixed = [0u8; 14];
        if !read_full(&mut self.input, &mut fixed)? {
            return Ok(None);
        }
        let offset_ns = u64::from_le_bytes(fixed[0..8].try_into().expect("8 bytes"));
        let type_id = u16::from_le_bytes(fixed[8..10].try_into().expect("2 bytes"));
        let len = u32::from_le_bytes(fixed[10..14].try_into().expect("4 bytes"));
        if len as usize > MAX_PAYLOAD {
            return Err(RecordingError::TooLarge {
                index: self.index,
                len,
            });
        }
        let mut payload = vec![0u8; len as usize];
        if !read_full(&mut self.input, &mut payload)? {
            return Ok(None);
        }
        self.index += 1;
        Ok(Some(Record {
            offset_ns,
            type_id,
            payload,
        }))
    }
}

/// Fills `buf`; `false` if the input ended first (a clean end or a cut-short record).
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            schema_digest: "ab".repeat(32),
            schema_canonical: "mycelium-schema/1\n".into(),
            started_unix_ns: 42,
        }
    }

    #[test]
    fn records_round_trip_and_a_cut_short_tail_ends_the_reading() {
        let mut file = Vec::new();
        write_header(&mut file, &header()).unwrap();
        let records = [
            Record {
                offset_ns: 0,
                type_id: 1,
                payload: vec![1, 2, 3],
            },
            Record {
                offset_ns: 5_000,
                type_id: 8,
                payload: vec![],
            },
        ];
        for r in &records {
            write_record(&mut file, r).unwrap();
        }
        let mut reader = Reader::new(&file[..]).unwrap();
        assert_eq!(reader.header(), &header());
        assert_eq!(reader.next_record().unwrap().as_ref(), Some(&records[0]));
        assert_eq!(reader.next_record().unwrap().as_ref(), Some(&records[1]));
        assert!(reader.next_record().unwrap().is_none());
        // A recorder killed mid-record: everything before it is still read.
        let cut = &file[..file.len() - 3];
        let mut reader = Reader::new(cut).unwrap();
        assert!(reader.next_record().unwrap().is_some());
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn other_files_and_absurd_lengths_are_refused() {
        assert!(matches!(
            Reader::new(&b"hello\n"[..]),
            Err(RecordingError::NotARecording)
        ));
        let no_newline = vec![b'x'; 10_000];
        assert!(matches!(
            Reader::new(&no_newline[..]),
            Err(RecordingError::NotARecording)
        ));
        let mut file = Vec::new();
        write_header(&mut file, &header()).unwrap();
        file.extend_from_slice(&0u64.to_le_bytes());
        file.extend_from_slice(&1u16.to_le_bytes());
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut reader = Reader::new(&file[..]).unwrap();
        assert!(matches!(
            reader.next_record(),
            Err(RecordingError::TooLarge { index: 0, .. })
        ));
    }
}
