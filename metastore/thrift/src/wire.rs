//! The wire layer: what a client's bytes are, before any handler sees them.
//!
//! This module owns, for one connection:
//!
//! - **Detection.** The first bytes tell the transport and the protocol: strict
//!   binary begins `0x80 0x01`, compact begins `0x82`, and a framed message
//!   begins with a 4-byte big-endian length followed by one of those. The
//!   answer is fixed for the life of the connection ([`Encoding`]).
//! - **Reading whole messages.** Every request is read completely into a buffer
//!   before it is dispatched, never more than [`Limits::max_message_bytes`].
//!   A framed message is as long as its frame says; an unframed one is walked
//!   through the Thrift grammar (binary or compact) as its bytes arrive. The
//!   walk also enforces the other limits: no string or container may claim more
//!   than the bytes still allowed (a list header claiming 2^31 elements fails
//!   at once, without allocating), and structs and containers nest at most
//!   [`Limits::max_depth`] deep. Framed messages are walked the same way, so
//!   both transports accept exactly the same messages.
//! - **Decoding from the buffer.** [`BufferInputProtocol`] implements the
//!   `thrift` crate's `TInputProtocol` over the buffered message and refuses any
//!   length or element count larger than the bytes that remain, so decoding
//!   never attempts a large allocation either.
//! - **Encoding replies** in the client's own transport and protocol
//!   ([`ReplyBuffer`]).
//!
//! Garbage, truncated and oversized input ends in a [`WireError`]; the caller
//! (the server) closes that connection. Nothing here panics on input.
//!
//! It does not own threads, timeouts policy or dispatch: see `server.rs`.

use std::fmt;
use std::io::{self, Read};

use thrift::protocol::{
    TBinaryOutputProtocol, TCompactOutputProtocol, TFieldIdentifier, TInputProtocol,
    TListIdentifier, TMapIdentifier, TMessageIdentifier, TMessageType, TOutputProtocol,
    TSetIdentifier, TStructIdentifier, TType,
};
use thrift::{ProtocolError, ProtocolErrorKind, TransportError, TransportErrorKind};

/// How messages are delimited on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Each message is preceded by its length as a 4-byte big-endian integer
    /// (`TFramedTransport`).
    Framed,
    /// Messages follow each other with no delimiter (`TSocket` with or without
    /// `TBufferedTransport`); their length is only known by parsing them.
    Unframed,
}

/// How a message is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `TBinaryProtocol`, strict (versioned) messages only.
    Binary,
    /// `TCompactProtocol`.
    Compact,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Framed => "framed",
            Transport::Unframed => "unframed",
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Binary => "binary",
            Protocol::Compact => "compact",
        })
    }
}

/// The transport and protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Encoding {
    /// Framed or unframed.
    pub transport: Transport,
    /// Binary or compact.
    pub protocol: Protocol,
}

/// Bounds on what one request may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes (without the frame header).
    pub max_message_bytes: usize,
    /// Deepest nesting of structs and containers; the argument struct of a call
    /// is depth 1.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 100 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// Why a connection's input could not be read as a Thrift message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The peer closed the connection between two messages.
    #[error("connection closed by the peer")]
    Closed,
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed in the middle of a message, after {received} bytes")]
    Truncated {
        /// Bytes of the message received before the end.
        received: usize,
    },
    /// Reading from the socket failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The first bytes are neither binary nor compact Thrift, framed or not.
    #[error("not a Thrift message (first bytes {0:02x?})")]
    UnknownEncoding(Vec<u8>),
    /// A later message does not start the way the connection's first did.
    #[error("expected a {expected:?} message, got first byte {found:#04x}")]
    EncodingChanged {
        /// The connection's encoding.
        expected: Encoding,
        /// The first byte of the offending message.
        found: u8,
    },
    /// The message is larger than [`Limits::max_message_bytes`].
    #[error("message larger than the limit of {limit} bytes (at least {size})")]
    TooLarge {
        /// The size claimed or reached.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A frame header gives a length of zero.
    #[error("empty frame")]
    EmptyFrame,
    /// Structs or containers nest deeper than [`Limits::max_depth`].
    #[error("structs and containers nested deeper than {limit}")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// The message header carries an unknown protocol version.
    #[error("{protocol} message with a bad version header {found:#010x}")]
    BadVersion {
        /// Binary or compact.
        protocol: Protocol,
        /// The header bytes.
        found: u32,
    },
    /// The message type is not call, reply, exception or oneway.
    #[error("{protocol} message of unknown type {code}")]
    BadMessageType {
        /// Binary or compact.
        protocol: Protocol,
        /// The type code found.
        code: u8,
    },
    /// A field or element type code that does not exist.
    #[error("{protocol} value of unknown type {code}")]
    BadType {
        /// Binary or compact.
        protocol: Protocol,
        /// The type code found.
        code: u8,
    },
    /// A string length or container size that is negative or larger than the
    /// bytes the message may still contain.
    #[error("{protocol} length or element count {size} is impossible with {remaining} bytes left")]
    BadSize {
        /// Binary or compact.
        protocol: Protocol,
        /// The length or count claimed.
        size: i64,
        /// Bytes the message may still contain.
        remaining: usize,
    },
    /// A compact varint longer than its type allows.
    #[error("compact varint longer than {max_bytes} bytes")]
    BadVarint {
        /// The most bytes a varint of that type takes.
        max_bytes: usize,
    },
    /// A frame holds bytes after the end of its message.
    #[error("frame has {extra} bytes after the end of its message")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The reader gave up waiting (see the server's timeouts and shutdown).
    #[error("{0}")]
    GaveUp(&'static str),
}

/// The header of a message, read by the walk before dispatch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// Method name (lossily decoded if it is not UTF-8; the decoder will then
    /// reject the message).
    pub name: String,
    /// 1 call, 2 reply, 3 exception, 4 oneway.
    pub kind: u8,
    /// Sequence number.
    pub sequence: i32,
}

impl MessageHeader {
    /// Whether the client expects no reply.
    pub fn is_oneway(&self) -> bool {
        self.kind == 4
    }
}

/// One complete request, as read from the connection.
#[derive(Debug)]
pub struct Message {
    /// The message header.
    pub header: MessageHeader,
    /// The whole message (header included, frame length excluded).
    pub bytes: Vec<u8>,
}

/// What the reader does when the socket has no bytes for now
/// (`WouldBlock`/`TimedOut` from a read with a timeout).
pub trait WaitPolicy {
    /// Called on each timed-out read; `mid_message` tells whether part of a
    /// message has already arrived. Return `Err` to give up (the message and
    /// the connection are dropped) or `Ok` to keep waiting.
    fn on_idle(&mut self, mid_message: bool) -> Result<(), WireError>;
    /// Called whenever bytes arrive.
    fn on_progress(&mut self) {}
}

/// Waits forever (readers without timeouts, in tests).
#[cfg(test)]
pub struct WaitForever;

#[cfg(test)]
impl WaitPolicy for WaitForever {
    fn on_idle(&mut self, _mid_message: bool) -> Result<(), WireError> {
        Ok(())
    }
}

/// Size of each read from the socket. Memory grows only as bytes arrive, so a
/// client that claims a large message but does not send it costs little.
const READ_CHUNK: usize = 64 * 1024;

/// Reads complete messages from one connection.
pub struct MessageReader<R, W> {
    inner: R,
    wait: W,
    limits: Limits,
    encoding: Option<Encoding>,
    /// Bytes received and not yet handed out; the current message starts at 0.
    buf: Vec<u8>,
    /// How far the current message has been parsed.
    pos: usize,
    /// Bytes in `buf` before `pos` that are not part of the message (frame
    /// header), so that `pos - skip` is the message's size so far.
    skip: usize,
}

impl<R: Read, W: WaitPolicy> MessageReader<R, W> {
    /// A reader for a new connection; the encoding is detected from the first
    /// message.
    pub fn new(inner: R, wait: W, limits: Limits) -> Self {
        MessageReader {
            inner,
            wait,
            limits,
            encoding: None,
            buf: Vec::new(),
            pos: 0,
            skip: 0,
        }
    }

    /// The wait policy, e.g. to restart its clock.
    pub fn wait_mut(&mut self) -> &mut W {
        &mut self.wait
    }

    /// The connection's encoding, once the first bytes have been seen.
    #[cfg(test)]
    pub fn encoding(&self) -> Option<Encoding> {
        self.encoding
    }

    /// Detects the encoding from the first bytes without consuming them.
    /// [`WireError::Closed`] if the peer closes before sending anything.
    pub fn detect(&mut self) -> Result<Encoding, WireError> {
        if let Some(e) = self.encoding {
            return Ok(e);
        }
        self.fill_to(1)?;
        let encoding = match self.buf[0] {
            0x80 => {
                self.fill_to(2)?;
                if self.buf[1] != 0x01 {
                    return Err(WireError::UnknownEncoding(self.buf[..2].to_vec()));
                }
                Encoding { transport: Transport::Unframed, protocol: Protocol::Binary }
            }
            0x82 => Encoding { transport: Transport::Unframed, protocol: Protocol::Compact },
            _ => {
                self.fill_to(5)?;
                let protocol = match self.buf[4] {
                    0x80 => Protocol::Binary,
                    0x82 => Protocol::Compact,
                    _ => return Err(WireError::UnknownEncoding(self.buf[..5].to_vec())),
                };
                Encoding { transport: Transport::Framed, protocol }
            }
        };
        self.encoding = Some(encoding);
        Ok(encoding)
    }

    /// Reads the next complete message. [`WireError::Closed`] when the peer
    /// closed the connection cleanly between messages.
    pub fn next_message(&mut self) -> Result<Message, WireError> {
        let encoding = self.detect()?;
        self.pos = 0;
        self.skip = 0;
        match encoding.transport {
            Transport::Framed => self.next_framed(encoding.protocol),
            Transport::Unframed => self.next_unframed(encoding.protocol),
        }
    }

    fn next_framed(&mut self, protocol: Protocol) -> Result<Message, WireError> {
        let head = self.take(4)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64;
        if len == 0 {
            return Err(WireError::EmptyFrame);
        }
        if len > self.limits.max_message_bytes as u64 {
            return Err(WireError::TooLarge { size: len, limit: self.limits.max_message_bytes });
        }
        self.skip = 4;
        let first = self.take(1)?[0];
        let expected_first = match protocol {
            Protocol::Binary => 0x80,
            Protocol::Compact => 0x82,
        };
        if first != expected_first {
            return Err(WireError::EncodingChanged {
                expected: Encoding { transport: Transport::Framed, protocol },
                found: first,
            });
        }
        self.pos = 4;
        self.take(len as usize)?;
        let rest = self.buf.split_off(4 + len as usize);
        let mut frame = std::mem::replace(&mut self.buf, rest);
        frame.drain(..4);
        let mut source = SliceSource { bytes: &frame, pos: 0 };
        let header = walk_message(&mut source, protocol, self.limits)?;
        if source.pos != frame.len() {
            return Err(WireError::TrailingBytes { extra: frame.len() - source.pos });
        }
        Ok(Message { header, bytes: frame })
    }

    fn next_unframed(&mut self, protocol: Protocol) -> Result<Message, WireError> {
        let first = self.peek_first()?;
        let expected_first = match protocol {
            Protocol::Binary => 0x80,
            Protocol::Compact => 0x82,
        };
        if first != expected_first {
            return Err(WireError::EncodingChanged {
                expected: Encoding { transport: Transport::Unframed, protocol },
                found: first,
            });
        }
        let limits = self.limits;
        let header = walk_message(self, protocol, limits)?;
        let rest = self.buf.split_off(self.pos);
        let bytes = std::mem::replace(&mut self.buf, rest);
        Ok(Message { header, bytes })
    }

    fn peek_first(&mut self) -> Result<u8, WireError> {
        self.fill_to(1)?;
        Ok(self.buf[0])
    }

    /// Ensures `buf` holds at least `n` bytes, reading from the connection.
    fn fill_to(&mut self, n: usize) -> Result<(), WireError> {
        while self.buf.len() < n {
            let chunk_start = self.buf.len();
            self.buf.resize(chunk_start + READ_CHUNK, 0);
            let got = self.inner.read(&mut self.buf[chunk_start..]);
            match got {
                Ok(0) => {
                    self.buf.truncate(chunk_start);
                    return Err(if chunk_start == 0 {
                        WireError::Closed
                    } else {
                        WireError::Truncated { received: chunk_start.saturating_sub(self.skip) }
                    });
                }
                Ok(k) => {
                    self.buf.truncate(chunk_start + k);
                    self.wait.on_progress();
                }
                Err(e) => {
                    self.buf.truncate(chunk_start);
                    match e.kind() {
                        io::ErrorKind::Interrupted => {}
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                            self.wait.on_idle(chunk_start > 0)?;
                        }
                        _ => return Err(WireError::Io(e)),
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: Read, W: WaitPolicy> Source for MessageReader<R, W> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        let end = self.pos.checked_add(n).ok_or(WireError::TooLarge {
            size: u64::MAX,
            limit: self.limits.max_message_bytes,
        })?;
        if end - self.skip > self.limits.max_message_bytes {
            return Err(WireError::TooLarge {
                size: (end - self.skip) as u64,
                limit: self.limits.max_message_bytes,
            });
        }
        self.fill_to(end)?;
        let start = self.pos;
        self.pos = end;
        Ok(&self.buf[start..end])
    }

    fn remaining(&self) -> usize {
        self.limits.max_message_bytes.saturating_sub(self.pos - self.skip)
    }
}

/// Where the walk gets its bytes: a socket (unframed) or a complete frame.
pub trait Source {
    /// The next `n` bytes of the message; fails rather than go past the end
    /// of a frame or beyond the size limit.
    fn take(&mut self, n: usize) -> Result<&[u8], WireError>;
    /// How many more bytes the message may contain.
    fn remaining(&self) -> usize;
}

/// A [`Source`] over a complete message (a frame, or a test vector).
pub struct SliceSource<'a> {
    /// The message.
    pub bytes: &'a [u8],
    /// Bytes consumed.
    pub pos: usize,
}

impl Source for SliceSource<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if n > self.bytes.len() - self.pos {
            return Err(WireError::Truncated { received: self.bytes.len() });
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.bytes[start..self.pos])
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

/// Walks one message (header and argument struct) through the grammar of
/// `protocol`, consuming exactly its bytes from `source`, and returns its
/// header. Enforces `limits`; allocates nothing proportional to what the
/// message claims.
pub fn walk_message<S: Source + ?Sized>(
    source: &mut S,
    protocol: Protocol,
    limits: Limits,
) -> Result<MessageHeader, WireError> {
    let mut walk = Walk { src: source, protocol, max_depth: limits.max_depth };
    let header = match protocol {
        Protocol::Binary => walk.binary_header()?,
        Protocol::Compact => walk.compact_header()?,
    };
    walk.structure(1)?;
    Ok(header)
}

struct Walk<'s, S: Source + ?Sized> {
    src: &'s mut S,
    protocol: Protocol,
    max_depth: usize,
}

// Binary type codes.
const B_BOOL: u8 = 2;
const B_I8: u8 = 3;
const B_DOUBLE: u8 = 4;
const B_I16: u8 = 6;
const B_I32: u8 = 8;
const B_I64: u8 = 10;
const B_STRING: u8 = 11;
const B_STRUCT: u8 = 12;
const B_MAP: u8 = 13;
const B_SET: u8 = 14;
const B_LIST: u8 = 15;

// Compact type codes.
const C_TRUE: u8 = 1;
const C_FALSE: u8 = 2;
const C_I8: u8 = 3;
const C_I16: u8 = 4;
const C_I32: u8 = 5;
const C_I64: u8 = 6;
const C_DOUBLE: u8 = 7;
const C_BINARY: u8 = 8;
const C_LIST: u8 = 9;
const C_SET: u8 = 10;
const C_MAP: u8 = 11;
const C_STRUCT: u8 = 12;

impl<S: Source + ?Sized> Walk<'_, S> {
    fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.src.take(1)?[0])
    }

    fn be_i32(&mut self) -> Result<i32, WireError> {
        let b = self.src.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Checks a length or count against the bytes left, given the fewest
    /// bytes each unit takes.
    fn check_size(&self, size: i64, min_unit_bytes: usize) -> Result<usize, WireError> {
        let remaining = self.src.remaining();
        if size < 0 || (size as u64).saturating_mul(min_unit_bytes as u64) > remaining as u64 {
            return Err(WireError::BadSize { protocol: self.protocol, size, remaining });
        }
        Ok(size as usize)
    }

    fn skip_bytes(&mut self, n: usize) -> Result<(), WireError> {
        // Take in bounded steps so a socket source reads as the bytes arrive.
        let mut left = n;
        while left > 0 {
            let step = left.min(READ_CHUNK);
            self.src.take(step)?;
            left -= step;
        }
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<(), WireError> {
        if depth > self.max_depth {
            Err(WireError::TooDeep { limit: self.max_depth })
        } else {
            Ok(())
        }
    }

    fn bad_type(&self, code: u8) -> WireError {
        WireError::BadType { protocol: self.protocol, code }
    }

    fn message_kind(&self, code: u8) -> Result<u8, WireError> {
        if (1..=4).contains(&code) {
            Ok(code)
        } else {
            Err(WireError::BadMessageType { protocol: self.protocol, code })
        }
    }

    fn name(&mut self, len: usize) -> Result<String, WireError> {
        Ok(String::from_utf8_lossy(self.src.take(len)?).into_owned())
    }

    fn structure(&mut self, depth: usize) -> Result<(), WireError> {
        self.enter(depth)?;
        match self.protocol {
            Protocol::Binary => loop {
                let ty = self.byte()?;
                if ty == 0 {
                    return Ok(());
                }
                self.src.take(2)?; // field id
                self.binary_value(ty, depth)?;
            },
            Protocol::Compact => loop {
                let head = self.byte()?;
                if head == 0 {
                    return Ok(());
                }
                if head >> 4 == 0 {
                    self.varint(3)?; // field id, zigzag i16
                }
                match head & 0x0f {
                    C_TRUE | C_FALSE => {} // the value is in the type
                    ty => self.compact_value(ty, depth)?,
                }
            },
        }
    }

    // ---- binary ----

    fn binary_header(&mut self) -> Result<MessageHeader, WireError> {
        let word = self.be_i32()? as u32;
        if word & 0xffff_0000 != 0x8001_0000 {
            return Err(WireError::BadVersion { protocol: Protocol::Binary, found: word });
        }
        let kind = self.message_kind((word & 0xff) as u8)?;
        let len = self.be_i32()?;
        let len = self.check_size(len as i64, 1)?;
        let name = self.name(len)?;
        let sequence = self.be_i32()?;
        Ok(MessageHeader { name, kind, sequence })
    }

    /// Fewest bytes a binary value of type `ty` takes.
    fn binary_width(&self, ty: u8) -> Result<usize, WireError> {
        Ok(match ty {
            B_BOOL | B_I8 => 1,
            B_I16 => 2,
            B_I32 => 4,
            B_DOUBLE | B_I64 => 8,
            B_STRING => 4,
            B_STRUCT => 1,
            B_MAP => 6,
            B_SET | B_LIST => 5,
            other => return Err(self.bad_type(other)),
        })
    }

    fn binary_value(&mut self, ty: u8, depth: usize) -> Result<(), WireError> {
        match ty {
            B_BOOL | B_I8 | B_I16 | B_I32 | B_I64 | B_DOUBLE => {
                let w = self.binary_width(ty)?;
                self.src.take(w)?;
            }
            B_STRING => {
                let len = self.be_i32()?;
                let len = self.check_size(len as i64, 1)?;
                self.skip_bytes(len)?;
            }
            B_STRUCT => self.structure(depth + 1)?,
            B_MAP => {
                self.enter(depth + 1)?;
                let k = self.byte()?;
                let v = self.byte()?;
                let unit = self.binary_width(k)? + self.binary_width(v)?;
                let size = self.be_i32()?;
                let size = self.check_size(size as i64, unit)?;
                for _ in 0..size {
                    self.binary_value(k, depth + 1)?;
                    self.binary_value(v, depth + 1)?;
                }
            }
            B_SET | B_LIST => {
                self.enter(depth + 1)?;
                let e = self.byte()?;
                let unit = self.binary_width(e)?;
                let size = self.be_i32()?;
                let size = self.check_size(size as i64, unit)?;
                for _ in 0..size {
                    self.binary_value(e, depth + 1)?;
                }
            }
            other => return Err(self.bad_type(other)),
        }
        Ok(())
    }

    // ---- compact ----

    /// An unsigned LEB128 varint of at most `max_bytes` bytes.
    fn varint(&mut self, max_bytes: usize) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::BadVarint { max_bytes })
    }

    fn compact_header(&mut self) -> Result<MessageHeader, WireError> {
        let id = self.byte()?;
        let vt = self.byte()?;
        if id != 0x82 || vt & 0x1f != 1 {
            return Err(WireError::BadVersion {
                protocol: Protocol::Compact,
                found: u32::from_be_bytes([0, 0, id, vt]),
            });
        }
        let kind = self.message_kind(vt >> 5)?;
        let sequence = self.varint(5)? as u32 as i32;
        let len = self.varint(5)?;
        let len = self.check_size(len as i64, 1)?;
        let name = self.name(len)?;
        Ok(MessageHeader { name, kind, sequence })
    }

    /// Fewest bytes a compact value of type `ty` takes inside a container.
    fn compact_width(&self, ty: u8) -> Result<usize, WireError> {
        Ok(match ty {
            C_TRUE | C_FALSE | C_I8 | C_I16 | C_I32 | C_I64 => 1,
            C_DOUBLE => 8,
            C_BINARY | C_LIST | C_SET | C_MAP | C_STRUCT => 1,
            other => return Err(self.bad_type(other)),
        })
    }

    fn compact_value(&mut self, ty: u8, depth: usize) -> Result<(), WireError> {
        match ty {
            // Only inside containers: a bool element is one byte.
            C_TRUE | C_FALSE | C_I8 => {
                self.src.take(1)?;
            }
            C_I16 => {
                self.varint(3)?;
            }
            C_I32 => {
                self.varint(5)?;
            }
            C_I64 => {
                self.varint(10)?;
            }
            C_DOUBLE => {
                self.src.take(8)?;
            }
            C_BINARY => {
                let len = self.varint(5)?;
                let len = self.check_size(len as i64, 1)?;
                self.skip_bytes(len)?;
            }
            C_STRUCT => self.structure(depth + 1)?,
            C_LIST | C_SET => {
                self.enter(depth + 1)?;
                let head = self.byte()?;
                let e = head & 0x0f;
                let size = match head >> 4 {
                    15 => self.varint(5)?,
                    n => n as u64,
                };
                let unit = self.compact_width(e)?;
                let size = self.check_size(size as i64, unit)?;
                for _ in 0..size {
                    self.compact_value(e, depth + 1)?;
                }
            }
            C_MAP => {
                self.enter(depth + 1)?;
                let size = self.varint(5)?;
                if size > 0 {
                    let kv = self.byte()?;
                    let (k, v) = (kv >> 4, kv & 0x0f);
                    let unit = self.compact_width(k)? + self.compact_width(v)?;
                    let size = self.check_size(size as i64, unit)?;
                    for _ in 0..size {
                        self.compact_value(k, depth + 1)?;
                        self.compact_value(v, depth + 1)?;
                    }
                }
            }
            other => return Err(self.bad_type(other)),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Decoding from the buffer.

/// A `TInputProtocol` (binary or compact) over one buffered message. Every
/// length and element count is checked against the bytes that remain before
/// anything is allocated; running off the end is an end-of-file transport
/// error, never a panic.
pub struct BufferInputProtocol<'a> {
    bytes: &'a [u8],
    pos: usize,
    protocol: Protocol,
    // Compact state.
    last_field_id: i16,
    field_id_stack: Vec<i16>,
    pending_bool: Option<bool>,
}

fn protocol_error(kind: ProtocolErrorKind, message: String) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError::new(kind, message))
}

impl<'a> BufferInputProtocol<'a> {
    /// Decodes `bytes` (one whole message) in `protocol`.
    pub fn new(bytes: &'a [u8], protocol: Protocol) -> Self {
        BufferInputProtocol {
            bytes,
            pos: 0,
            protocol,
            last_field_id: 0,
            field_id_stack: Vec::new(),
            pending_bool: None,
        }
    }

    /// Bytes not decoded yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> thrift::Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(thrift::Error::Transport(TransportError::new(
                TransportErrorKind::EndOfFile,
                format!("message ends {} bytes too early", n - self.remaining()),
            )));
        }
        let bytes = self.bytes;
        let start = self.pos;
        self.pos += n;
        Ok(&bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self) -> thrift::Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A length or element count, checked against what remains.
    fn checked_size(&self, size: i64, min_unit_bytes: usize) -> thrift::Result<i32> {
        if size < 0 {
            return Err(protocol_error(
                ProtocolErrorKind::NegativeSize,
                format!("negative length or count {size}"),
            ));
        }
        if (size as u64).saturating_mul(min_unit_bytes as u64) > self.remaining() as u64
            || size > i32::MAX as i64
        {
            return Err(protocol_error(
                ProtocolErrorKind::SizeLimit,
                format!("length or count {size} exceeds the {} bytes left", self.remaining()),
            ));
        }
        Ok(size as i32)
    }

    fn varint(&mut self, max_bytes: usize) -> thrift::Result<u64> {
        let mut value: u64 = 0;
        for i in 0..max_bytes {
            let b = self.take(1)?[0];
            value |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(protocol_error(ProtocolErrorKind::InvalidData, "varint too long".into()))
    }

    fn zigzag(&mut self, max_bytes: usize) -> thrift::Result<i64> {
        let v = self.varint(max_bytes)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn binary_type(code: u8) -> thrift::Result<TType> {
        Ok(match code {
            0 => TType::Stop,
            B_BOOL => TType::Bool,
            B_I8 => TType::I08,
            B_DOUBLE => TType::Double,
            B_I16 => TType::I16,
            B_I32 => TType::I32,
            B_I64 => TType::I64,
            B_STRING => TType::String,
            B_STRUCT => TType::Struct,
            B_MAP => TType::Map,
            B_SET => TType::Set,
            B_LIST => TType::List,
            other => {
                return Err(protocol_error(
                    ProtocolErrorKind::InvalidData,
                    format!("unknown binary type {other}"),
                ));
            }
        })
    }

    fn compact_type(code: u8) -> thrift::Result<TType> {
        Ok(match code {
            0 => TType::Stop,
            C_TRUE | C_FALSE => TType::Bool,
            C_I8 => TType::I08,
            C_I16 => TType::I16,
            C_I32 => TType::I32,
            C_I64 => TType::I64,
            C_DOUBLE => TType::Double,
            C_BINARY => TType::String,
            C_LIST => TType::List,
            C_SET => TType::Set,
            C_MAP => TType::Map,
            C_STRUCT => TType::Struct,
            other => {
                return Err(protocol_error(
                    ProtocolErrorKind::InvalidData,
                    format!("unknown compact type {other}"),
                ));
            }
        })
    }

    /// Fewest encoded bytes of one element of type `t`.
    fn min_width(&self, t: TType) -> usize {
        match (self.protocol, t) {
            (Protocol::Binary, TType::I16) => 2,
            (Protocol::Binary, TType::I32) => 4,
            (Protocol::Binary, TType::I64) => 8,
            (Protocol::Binary, TType::String) => 4,
            (Protocol::Binary, TType::Map) => 6,
            (Protocol::Binary, TType::Set | TType::List) => 5,
            (_, TType::Double) => 8,
            _ => 1,
        }
    }

    fn list_header(&mut self) -> thrift::Result<(TType, i32)> {
        match self.protocol {
            Protocol::Binary => {
                let t = Self::binary_type(self.take(1)?[0])?;
                let size = i32::from_be_bytes(self.array()?);
                let size = self.checked_size(size as i64, self.min_width(t))?;
                Ok((t, size))
            }
            Protocol::Compact => {
                let head = self.take(1)?[0];
                let t = Self::compact_type(head & 0x0f)?;
                let size = match head >> 4 {
                    15 => self.varint(5)? as i64,
                    n => n as i64,
                };
                let size = self.checked_size(size, self.min_width(t))?;
                Ok((t, size))
            }
        }
    }
}

impl TInputProtocol for BufferInputProtocol<'_> {
    fn read_message_begin(&mut self) -> thrift::Result<TMessageIdentifier> {
        let (kind, name, seq) = match self.protocol {
            Protocol::Binary => {
                let word = u32::from_be_bytes(self.array()?);
                if word & 0xffff_0000 != 0x8001_0000 {
                    return Err(protocol_error(
                        ProtocolErrorKind::BadVersion,
                        format!("bad binary version header {word:#010x}"),
                    ));
                }
                let name = self.read_string()?;
                let seq = i32::from_be_bytes(self.array()?);
                ((word & 0xff) as u8, name, seq)
            }
            Protocol::Compact => {
                let [id, vt] = self.array()?;
                if id != 0x82 || vt & 0x1f != 1 {
                    return Err(protocol_error(
                        ProtocolErrorKind::BadVersion,
                        format!("bad compact version header {id:#04x} {vt:#04x}"),
                    ));
                }
                let seq = self.varint(5)? as u32 as i32;
                let name = self.read_string()?;
                self.last_field_id = 0;
                (vt >> 5, name, seq)
            }
        };
        let kind = TMessageType::try_from(kind)?;
        Ok(TMessageIdentifier::new(name, kind, seq))
    }

    fn read_message_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_struct_begin(&mut self) -> thrift::Result<Option<TStructIdentifier>> {
        if self.protocol == Protocol::Compact {
            self.field_id_stack.push(self.last_field_id);
            self.last_field_id = 0;
        }
        Ok(None)
    }

    fn read_struct_end(&mut self) -> thrift::Result<()> {
        if self.protocol == Protocol::Compact {
            self.last_field_id = self.field_id_stack.pop().unwrap_or(0);
        }
        Ok(())
    }

    fn read_field_begin(&mut self) -> thrift::Result<TFieldIdentifier> {
        match self.protocol {
            Protocol::Binary => {
                let t = Self::binary_type(self.take(1)?[0])?;
                if t == TType::Stop {
                    return Ok(TFieldIdentifier::new::<Option<String>, String, Option<i16>>(
                        None,
                        TType::Stop,
                        None,
                    ));
                }
                let id = i16::from_be_bytes(self.array()?);
                Ok(TFieldIdentifier::new::<Option<String>, String, i16>(None, t, id))
            }
            Protocol::Compact => {
                let head = self.take(1)?[0];
                let code = head & 0x0f;
                let t = Self::compact_type(code)?;
                if t == TType::Stop {
                    return Ok(TFieldIdentifier::new::<Option<String>, String, Option<i16>>(
                        None,
                        TType::Stop,
                        None,
                    ));
                }
                match code {
                    C_TRUE => self.pending_bool = Some(true),
                    C_FALSE => self.pending_bool = Some(false),
                    _ => {}
                }
                let delta = (head >> 4) as i16;
                self.last_field_id = if delta != 0 {
                    self.last_field_id.wrapping_add(delta)
                } else {
                    self.zigzag(3)? as i16
                };
                Ok(TFieldIdentifier::new::<Option<String>, String, i16>(
                    None,
                    t,
                    self.last_field_id,
                ))
            }
        }
    }

    fn read_field_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_bool(&mut self) -> thrift::Result<bool> {
        if let Some(b) = self.pending_bool.take() {
            return Ok(b);
        }
        let b = self.take(1)?[0];
        match self.protocol {
            Protocol::Binary => Ok(b != 0),
            Protocol::Compact => match b {
                C_TRUE => Ok(true),
                C_FALSE | 0 => Ok(false),
                other => Err(protocol_error(
                    ProtocolErrorKind::InvalidData,
                    format!("cannot convert {other} into bool"),
                )),
            },
        }
    }

    fn read_bytes(&mut self) -> thrift::Result<Vec<u8>> {
        let len = match self.protocol {
            Protocol::Binary => i32::from_be_bytes(self.array()?) as i64,
            Protocol::Compact => self.varint(5)? as i64,
        };
        let len = self.checked_size(len, 1)? as usize;
        Ok(self.take(len)?.to_vec())
    }

    fn read_i8(&mut self) -> thrift::Result<i8> {
        Ok(self.take(1)?[0] as i8)
    }

    fn read_i16(&mut self) -> thrift::Result<i16> {
        match self.protocol {
            Protocol::Binary => Ok(i16::from_be_bytes(self.array()?)),
            Protocol::Compact => Ok(self.zigzag(3)? as i16),
        }
    }

    fn read_i32(&mut self) -> thrift::Result<i32> {
        match self.protocol {
            Protocol::Binary => Ok(i32::from_be_bytes(self.array()?)),
            Protocol::Compact => Ok(self.zigzag(5)? as i32),
        }
    }

    fn read_i64(&mut self) -> thrift::Result<i64> {
        match self.protocol {
            Protocol::Binary => Ok(i64::from_be_bytes(self.array()?)),
            Protocol::Compact => self.zigzag(10),
        }
    }

    fn read_double(&mut self) -> thrift::Result<f64> {
        match self.protocol {
            Protocol::Binary => Ok(f64::from_be_bytes(self.array()?)),
            Protocol::Compact => Ok(f64::from_le_bytes(self.array()?)),
        }
    }

    fn read_string(&mut self) -> thrift::Result<String> {
        let bytes = self.read_bytes()?;
        String::from_utf8(bytes).map_err(From::from)
    }

    fn read_list_begin(&mut self) -> thrift::Result<TListIdentifier> {
        let (t, size) = self.list_header()?;
        Ok(TListIdentifier::new(t, size))
    }

    fn read_list_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_set_begin(&mut self) -> thrift::Result<TSetIdentifier> {
        let (t, size) = self.list_header()?;
        Ok(TSetIdentifier::new(t, size))
    }

    fn read_set_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_map_begin(&mut self) -> thrift::Result<TMapIdentifier> {
        match self.protocol {
            Protocol::Binary => {
                let k = Self::binary_type(self.take(1)?[0])?;
                let v = Self::binary_type(self.take(1)?[0])?;
                let size = i32::from_be_bytes(self.array()?);
                let size =
                    self.checked_size(size as i64, self.min_width(k) + self.min_width(v))?;
                Ok(TMapIdentifier::new(k, v, size))
            }
            Protocol::Compact => {
                let size = self.varint(5)? as i64;
                if size == 0 {
                    return Ok(TMapIdentifier::new(None, None, 0));
                }
                let kv = self.take(1)?[0];
                let k = Self::compact_type(kv >> 4)?;
                let v = Self::compact_type(kv & 0x0f)?;
                let size = self.checked_size(size, self.min_width(k) + self.min_width(v))?;
                Ok(TMapIdentifier::new(k, v, size))
            }
        }
    }

    fn read_map_end(&mut self) -> thrift::Result<()> {
        Ok(())
    }

    fn read_byte(&mut self) -> thrift::Result<u8> {
        Ok(self.take(1)?[0])
    }
}

// ---------------------------------------------------------------------------
// Encoding replies.

/// Collects one reply and frames it for the connection's encoding.
pub struct ReplyBuffer {
    encoding: Encoding,
    bytes: Vec<u8>,
}

impl ReplyBuffer {
    /// An empty reply for a connection speaking `encoding`.
    pub fn new(encoding: Encoding) -> Self {
        let mut r = ReplyBuffer { encoding, bytes: Vec::new() };
        r.clear();
        r
    }

    /// Forgets whatever was written (e.g. by a handler that then panicked).
    pub fn clear(&mut self) {
        self.bytes.clear();
        if self.encoding.transport == Transport::Framed {
            self.bytes.extend_from_slice(&[0; 4]);
        }
    }

    fn header_len(&self) -> usize {
        match self.encoding.transport {
            Transport::Framed => 4,
            Transport::Unframed => 0,
        }
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == self.header_len()
    }

    /// An output protocol writing into this buffer.
    pub fn protocol(&mut self) -> Box<dyn TOutputProtocol + '_> {
        match self.encoding.protocol {
            Protocol::Binary => Box::new(TBinaryOutputProtocol::new(&mut self.bytes, true)),
            Protocol::Compact => Box::new(TCompactOutputProtocol::new(&mut self.bytes)),
        }
    }

    /// The bytes to send, frame header included.
    pub fn finish(&mut self) -> &[u8] {
        if self.encoding.transport == Transport::Framed {
            let len = (self.bytes.len() - 4) as u32;
            self.bytes[..4].copy_from_slice(&len.to_be_bytes());
        }
        &self.bytes
    }
}

#[cfg(test)]
mod tests;
