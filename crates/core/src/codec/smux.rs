//! xtaci/smux frames, the multiplexing GOST runs over a MUX-BIND (SOCKS5 `F2`)
//! or relay BIND connection (xtaci/smux v1.5.x `frame.go`, `session.go`).
//!
//! ```text
//! VER(1) | CMD(1) | LEN(2, little-endian) | SID(4, little-endian) | payload
//! ```
//! Only PSH carries LEN payload bytes. xtaci's reader takes nothing after the
//! header of SYN, FIN and NOP whatever LEN says, and exactly 8 bytes after UPD
//! (`consumed`, `window`, both LE u32), so this decoder does the same: a peer that
//! disagrees would desynchronise a Go peer just the same.

use std::io;

pub const HEADER_LEN: usize = 8;
/// Protocol version GOST uses unless `mux.version` says otherwise.
pub const VERSION_1: u8 = 1;
pub const VERSION_2: u8 = 2;

pub const CMD_SYN: u8 = 0;
pub const CMD_FIN: u8 = 1;
pub const CMD_PSH: u8 = 2;
pub const CMD_NOP: u8 = 3;
/// v2 window update; a v1 reader still accepts and ignores it, as xtaci does.
pub const CMD_UPD: u8 = 4;
pub const UPD_LEN: usize = 8;
/// The window a v2 writer assumes before the reader's first UPD (xtaci's
/// `initialPeerWindow`), whatever the reader's own buffer is.
pub const INITIAL_PEER_WINDOW: u32 = 256 * 1024;

/// Largest payload one frame can carry (LEN is 16 bits).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Syn(u32),
    Fin(u32),
    Psh(u32, &'a [u8]),
    Nop(u32),
    Upd { sid: u32, consumed: u32, window: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum SmuxError {
    #[error("smux: peer speaks protocol version {got}, this side version {want} (mux.version must match on both ends)")]
    BadVersion { got: u8, want: u8 },
    #[error("smux: unknown frame command 0x{0:02x} (the peer does not speak smux, or the stream is out of step)")]
    UnknownCommand(u8),
    #[error("smux: payload of {0} bytes does not fit in one frame (at most 65535)")]
    TooLarge(usize),
    #[error("smux: no frame from the peer for {0:?} (keepalive timeout)")]
    KeepaliveTimeout(std::time::Duration),
    #[error("smux: the peer sent {unread} unread bytes to stream {sid}, more than the window of {window} it was given (it ignores flow control)")]
    WindowExceeded { sid: u32, unread: usize, window: usize },
    #[error("smux: the peer acknowledged more bytes on stream {0} than were sent to it (it is out of step)")]
    Overacknowledged(u32),
    #[error("smux: stream ids are used up; a new session is needed")]
    GoAway,
    #[error("smux: session closed ({0})")]
    Closed(String),
    #[error("smux: {0}")]
    Io(#[from] io::Error),
}

impl From<SmuxError> for io::Error {
    fn from(e: SmuxError) -> io::Error {
        let kind = match &e {
            SmuxError::Io(_) => io::ErrorKind::Other,
            SmuxError::KeepaliveTimeout(_) => io::ErrorKind::TimedOut,
            SmuxError::Closed(_) => io::ErrorKind::BrokenPipe,
            SmuxError::GoAway => io::ErrorKind::Other,
            _ => io::ErrorKind::InvalidData,
        };
        match e {
            SmuxError::Io(inner) => inner,
            e => io::Error::new(kind, e),
        }
    }
}

/// Writes one frame. PSH takes `data`; every other command ignores it (callers
/// pass `&[]`), except UPD whose 8 bytes go in `data` as well.
pub fn encode(version: u8, cmd: u8, sid: u32, data: &[u8], out: &mut Vec<u8>) -> Result<(), SmuxError> {
    let len = u16::try_from(data.len()).map_err(|_| SmuxError::TooLarge(data.len()))?;
    out.reserve(HEADER_LEN + data.len());
    out.push(version);
    out.push(cmd);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&sid.to_le_bytes());
    out.extend_from_slice(data);
    Ok(())
}

/// Writes a v2 window update: the reader of stream `sid` has consumed
/// `consumed` bytes in all (wrapping at 2^32) and buffers up to `window`.
/// xtaci puts both in the payload, little-endian like the header, with LEN 8.
pub fn encode_upd(version: u8, sid: u32, consumed: u32, window: u32, out: &mut Vec<u8>) {
    let mut body = [0u8; UPD_LEN];
    body[..4].copy_from_slice(&consumed.to_le_bytes());
    body[4..].copy_from_slice(&window.to_le_bytes());
    // Eight bytes always fit in a frame.
    let _ = encode(version, CMD_UPD, sid, &body, out);
}

/// The frame at the start of `buf` and the bytes it took, or `Ok(None)` when more
/// bytes are needed. A wrong version or command fails as soon as the header is
/// in: xtaci ends the session there, and nothing after it can be trusted.
pub fn decode(buf: &[u8], version: u8) -> Result<Option<(Frame<'_>, usize)>, SmuxError> {
    let Some(hdr) = buf.get(..HEADER_LEN) else { return Ok(None) };
    let (ver, cmd) = (hdr[0], hdr[1]);
    if ver != version {
        return Err(SmuxError::BadVersion { got: ver, want: version });
    }
    let len = u16::from_le_bytes([hdr[2], hdr[3]]) as usize;
    let sid = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    let frame = match cmd {
        CMD_SYN => (Frame::Syn(sid), HEADER_LEN),
        CMD_FIN => (Frame::Fin(sid), HEADER_LEN),
        CMD_NOP => (Frame::Nop(sid), HEADER_LEN),
        CMD_PSH => {
            let Some(data) = buf.get(HEADER_LEN..HEADER_LEN + len) else { return Ok(None) };
            (Frame::Psh(sid, data), HEADER_LEN + len)
        }
        CMD_UPD => {
            let Some(u) = buf.get(HEADER_LEN..HEADER_LEN + UPD_LEN) else { return Ok(None) };
            let consumed = u32::from_le_bytes([u[0], u[1], u[2], u[3]]);
            let window = u32::from_le_bytes([u[4], u[5], u[6], u[7]]);
            (Frame::Upd { sid, consumed, window }, HEADER_LEN + UPD_LEN)
        }
        other => return Err(SmuxError::UnknownCommand(other)),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn enc(cmd: u8, sid: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(VERSION_1, cmd, sid, data, &mut v).unwrap();
        v
    }

    /// §5.8 C, frame by frame.
    #[test]
    fn example_c_bytes() {
        assert_eq!(enc(CMD_SYN, 3, &[]), hex("01 00 0000 03000000"));
        let reply = hex("05 00 00 01 CB007109 9C40");
        assert_eq!(enc(CMD_PSH, 3, &reply), hex("01 02 0A00 03000000 05 00 00 01 CB007109 9C40"));
        assert_eq!(enc(CMD_FIN, 3, &[]), hex("01 01 0000 03000000"));
        assert_eq!(enc(CMD_NOP, 0, &[]), hex("01 03 0000 00000000"));
        let big = vec![7u8; 0x1234];
        assert_eq!(&enc(CMD_PSH, 0x0102_0304, &big)[..8], &hex("01 02 3412 04030201")[..]);

        let wire = hex("01 00 0000 03000000 01 02 0A00 03000000 05 00 00 01 CB007109 9C40 01 01 0000 03000000 01 03 0000 00000000");
        let mut at = 0;
        let mut got = Vec::new();
        while let Some((f, n)) = decode(&wire[at..], 1).unwrap() {
            got.push(format!("{f:?}"));
            at += n;
        }
        assert_eq!(at, wire.len());
        assert_eq!(got, ["Syn(3)", "Psh(3, [5, 0, 0, 1, 203, 0, 113, 9, 156, 64])", "Fin(3)", "Nop(0)"]);
    }

    #[test]
    fn every_cut_needs_more_and_never_misreads() {
        let mut wire = enc(CMD_SYN, 5, &[]);
        wire.extend(enc(CMD_PSH, 5, b"hello world"));
        wire.extend(hex("01 04 0800 05000000 10000000 00000400"));
        wire.extend(enc(CMD_FIN, 5, &[]));
        let mut seen = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let rest = &wire[at..];
            let (f, n) = decode(rest, 1).unwrap().unwrap();
            for cut in 0..n {
                assert!(decode(&rest[..cut], 1).unwrap().is_none(), "cut {cut} of {f:?}");
            }
            seen.push(f.clone_owned());
            at += n;
        }
        assert_eq!(seen.len(), 4);
        assert!(matches!(decode(&hex("01 04 0800 05000000 10000000 00000400"), 1).unwrap(), Some((Frame::Upd { sid: 5, consumed: 16, window: 0x40000 }, 16))));
    }

    #[test]
    fn control_frames_ignore_len_like_xtaci() {
        // A SYN claiming 4 payload bytes: xtaci reads the next header right after it.
        let wire = hex("01 00 0400 07000000 01 03 0000 00000000");
        let (f, n) = decode(&wire, 1).unwrap().unwrap();
        assert_eq!((f, n), (Frame::Syn(7), 8));
        assert_eq!(decode(&wire[n..], 1).unwrap().unwrap().0, Frame::Nop(0));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = decode(&hex("02 03 0000 00000000"), 1).unwrap_err();
        assert_eq!(e.to_string(), "smux: peer speaks protocol version 2, this side version 1 (mux.version must match on both ends)");
        assert!(matches!(decode(&hex("01 09 0000 00000000"), 1), Err(SmuxError::UnknownCommand(9))));
        // Garbage such as an HTTP answer is refused at its first header.
        assert!(decode(b"HTTP/1.1 200 OK\r\n", 1).is_err());
        // The largest LEN only ever asks for 65535 more bytes.
        let huge = hex("01 02 FFFF 01000000");
        assert!(decode(&huge, 1).unwrap().is_none());
        let mut full = huge.clone();
        full.resize(8 + 65535, 0);
        assert_eq!(decode(&full, 1).unwrap().unwrap().1, 8 + 65535);
        let mut v = Vec::new();
        assert!(matches!(encode(1, CMD_PSH, 1, &vec![0; 65536], &mut v), Err(SmuxError::TooLarge(65536))));
    }

    /// A v2 UPD as xtaci's `sendWindowUpdate` writes it: stream 3 has read
    /// 0x10 bytes and keeps a 64 KiB window.
    #[test]
    fn upd_bytes_match_xtaci_layout() {
        let mut v = Vec::new();
        encode_upd(VERSION_2, 3, 0x10, 65536, &mut v);
        assert_eq!(v, hex("02 04 0800 03000000 10000000 00000100"));
        let (f, n) = decode(&v, VERSION_2).unwrap().unwrap();
        assert_eq!((f, n), (Frame::Upd { sid: 3, consumed: 0x10, window: 65536 }, 16));
        // Wrapped counters travel as they are.
        v.clear();
        encode_upd(VERSION_2, 0x0102_0304, u32::MAX, 0x0004_0000, &mut v);
        assert_eq!(v, hex("02 04 0800 04030201 FFFFFFFF 00000400"));
        for cut in 0..v.len() {
            assert!(decode(&v[..cut], VERSION_2).unwrap().is_none(), "cut {cut}");
        }
        // A v2 session refuses a v1 frame and the other way round.
        let e = decode(&v, VERSION_1).unwrap_err();
        assert!(e.to_string().contains("version 2, this side version 1"), "{e}");
        assert!(matches!(decode(&hex("01 03 0000 00000000"), VERSION_2), Err(SmuxError::BadVersion { got: 1, want: 2 })));
    }

    impl Frame<'_> {
        fn clone_owned(&self) -> String {
            format!("{self:?}")
        }
    }
}
