//! GOST's UDP-over-stream frame and the standard SOCKS5 UDP datagram header.
//!
//! On a stream (SOCKS5 UDP-TUN, HTTP `X-Gost-Protocol: udp`, relay UDP) each datagram
//! travels as
//! ```text
//! RSV(2) = payload length | FRAG(1) = 0xFF | ATYP ADDR PORT | payload
//! ```
//! (go-gost/x `internal/util/socks/conn.go`, gosocks5 `UDPDatagram`). The length in
//! RSV is what delimits frames, so **a zero-length payload cannot be carried**:
//! GOST writes it as RSV=0, which its own readers then cannot delimit. `encode`
//! refuses it (the caller drops the datagram); `decode` takes RSV=0 as a header
//! with an empty payload, which keeps the stream in step with GOST's writer.
//!
//! Over real UDP (RFC 1928 UDP ASSOCIATE) the header is `RSV(2)=0 | FRAG | ADDR`
//! and the datagram boundary delimits the payload. RSV is not checked on
//! receipt (gosocks5 `UDPHeader.ReadFrom` ignores it); FRAG is reported and the
//! caller drops fragments.

use super::addr::{Addr, AddrError};
use std::io;
use std::ops::Range;

/// FRAG value GOST writes on a stream.
pub const TUN_FRAG: u8 = 0xFF;
pub const MAX_PAYLOAD: usize = 65535;
/// Longest address: ATYP + LEN + 255-byte name + port.
pub const MAX_ADDR_LEN: usize = 1 + 1 + 255 + 2;
pub const MAX_FRAME_LEN: usize = 3 + MAX_ADDR_LEN + MAX_PAYLOAD;

#[derive(Debug, thiserror::Error)]
pub enum UdpTunError {
    #[error("udp-over-stream: {0}")]
    Io(#[from] io::Error),
    #[error("udp-over-stream: the peer closed the stream in the middle of a frame")]
    Truncated,
    #[error("udp-over-stream: bad address in frame: {0}")]
    Addr(#[from] AddrError),
    #[error("udp-over-stream: an empty datagram cannot be carried on a stream (dropped)")]
    EmptyPayload,
    #[error("udp-over-stream: datagram of {0} bytes is larger than 65535")]
    TooLarge(usize),
    #[error("socks5 udp: datagram too short for its header")]
    ShortDatagram,
    #[error("udp-over-stream: cannot resolve {0}")]
    Resolve(String),
}

impl From<UdpTunError> for io::Error {
    fn from(e: UdpTunError) -> io::Error {
        match e {
            UdpTunError::Io(inner) => inner,
            UdpTunError::Truncated => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Appends one frame. Refuses an empty payload (see the module docs) and one
/// larger than 65535 bytes.
pub fn encode(addr: &Addr, payload: &[u8], out: &mut Vec<u8>) -> Result<(), UdpTunError> {
    if payload.is_empty() {
        return Err(UdpTunError::EmptyPayload);
    }
    let len = u16::try_from(payload.len()).map_err(|_| UdpTunError::TooLarge(payload.len()))?;
    out.reserve(3 + addr.encoded_len() + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.push(TUN_FRAG);
    addr.encode(out);
    out.extend_from_slice(payload);
    Ok(())
}

/// Decodes one frame at the start of `buf`: `Ok(None)` when more bytes are needed,
/// else the address, where the payload sits in `buf`, and the bytes the frame took.
/// FRAG is not checked (GOST's readers ignore it). An RSV of 0 yields an empty
/// payload (see the module docs).
pub fn decode(buf: &[u8]) -> Result<Option<(Addr, Range<usize>, usize)>, UdpTunError> {
    let [l0, l1, _frag, rest @ ..] = buf else { return Ok(None) };
    let len = u16::from_be_bytes([*l0, *l1]) as usize;
    let Some((addr, alen)) = Addr::decode(rest)? else { return Ok(None) };
    let start = 3 + alen;
    let end = start + len;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((addr, start..end, end)))
}

/// Longest RFC 1928 UDP header: RSV FRAG + the longest address.
pub const MAX_DATAGRAM_HEADER_LEN: usize = 3 + MAX_ADDR_LEN;

/// Appends the RFC 1928 UDP request header `00 00 00 ADDR` (unfragmented).
pub fn encode_datagram_header(addr: &Addr, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0]);
    addr.encode(out);
}

/// Header + payload in one buffer, ready for one `send`.
pub fn encode_datagram(addr: &Addr, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(3 + addr.encoded_len() + payload.len());
    encode_datagram_header(addr, out);
    out.extend_from_slice(payload);
}

/// An RFC 1928 UDP datagram as received on a UDP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Should be 0; not checked, as gosocks5 does not.
    pub rsv: u16,
    /// Non-zero means a fragment; Portway does not reassemble and drops it.
    pub frag: u8,
    pub addr: Addr,
    pub payload: Range<usize>,
}

/// Parses a whole datagram (the UDP boundary delimits it, so there is no "need
/// more": a short one is an error).
pub fn decode_datagram(buf: &[u8]) -> Result<Datagram, UdpTunError> {
    let [r0, r1, frag, rest @ ..] = buf else { return Err(UdpTunError::ShortDatagram) };
    let rsv = u16::from_be_bytes([*r0, *r1]);
    let Some((addr, alen)) = Addr::decode(rest)? else { return Err(UdpTunError::ShortDatagram) };
    Ok(Datagram { rsv, frag: *frag, addr, payload: 3 + alen..buf.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn frame(addr: &str, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(&Addr::parse(addr).unwrap(), payload, &mut v).unwrap();
        v
    }

    #[test]
    fn example_b_frames_byte_for_byte() {
        // §5.8 B: C→S 001E FF 01 C0A80101 0035 <30 bytes>; S→C 0032 FF … <50 bytes>
        let q = [0x11u8; 30];
        let a = [0x22u8; 50];
        let up = frame("192.168.1.1:53", &q);
        let mut want = hex("001E FF 01 C0A80101 0035");
        want.extend_from_slice(&q);
        assert_eq!(up, want);
        let down = frame("192.168.1.1:53", &a);
        let mut want = hex("0032 FF 01 C0A80101 0035");
        want.extend_from_slice(&a);
        assert_eq!(down, want);

        let (addr, range, used) = decode(&up).unwrap().unwrap();
        assert_eq!(addr.to_string(), "192.168.1.1:53");
        assert_eq!(&up[range], &q);
        assert_eq!(used, up.len());
    }

    #[test]
    fn every_cut_needs_more_and_frames_stay_in_step() {
        for (addr, payload) in [("192.168.1.1:53", &b"q"[..]), ("[::1]:9", &[7u8; 300][..]), ("dns.example:53", &b"abc"[..])] {
            let f = frame(addr, payload);
            for cut in 0..f.len() {
                assert!(decode(&f[..cut]).unwrap().is_none(), "{addr} cut {cut}");
            }
            // Two frames back to back: the first leaves the second intact.
            let mut two = f.clone();
            two.extend_from_slice(&frame("10.0.0.1:1", b"next"));
            let (_, r, used) = decode(&two).unwrap().unwrap();
            assert_eq!(&two[r], payload);
            let (a2, r2, _) = decode(&two[used..]).unwrap().unwrap();
            assert_eq!(a2.to_string(), "10.0.0.1:1");
            assert_eq!(&two[used..][r2], b"next");
        }
    }

    #[test]
    fn empty_and_oversized_payloads_are_refused() {
        let a = Addr::parse("1.2.3.4:5").unwrap();
        assert!(matches!(encode(&a, b"", &mut Vec::new()), Err(UdpTunError::EmptyPayload)));
        assert!(matches!(encode(&a, &vec![0; 65536], &mut Vec::new()), Err(UdpTunError::TooLarge(65536))));
        let mut v = Vec::new();
        encode(&a, &vec![0; 65535], &mut v).unwrap();
        assert_eq!(&v[..2], &[0xFF, 0xFF]);
        // GOST's writer for an empty payload: header only, RSV=0.
        let (addr, r, used) = decode(&hex("0000 FF 01 01020304 0005")).unwrap().unwrap();
        assert_eq!(addr, a);
        assert!(r.is_empty());
        assert_eq!(used, 10);
    }

    #[test]
    fn garbage_is_an_error_and_short_input_never_panics() {
        assert!(matches!(decode(&hex("0001 FF 09 00")), Err(UdpTunError::Addr(AddrError::BadType(9)))));
        for a in 0..=255u8 {
            for b in [0u8, 1, 0xFF] {
                let _ = decode(&[a]);
                let _ = decode(&[a, b]);
                let _ = decode(&[a, b, 0xFF]);
                let _ = decode_datagram(&[a, b]);
                let _ = decode_datagram(&[a, b, 0]);
            }
        }
    }

    #[test]
    fn standard_datagram_header() {
        let a = Addr::parse("192.168.1.1:53").unwrap();
        let mut v = Vec::new();
        encode_datagram_header(&a, &mut v);
        assert_eq!(v, hex("0000 00 01 C0A80101 0035"));
        v.extend_from_slice(b"hello");
        let d = decode_datagram(&v).unwrap();
        assert_eq!(d.frag, 0);
        assert_eq!(d.addr, a);
        assert_eq!(&v[d.payload], b"hello");
        assert!(matches!(decode_datagram(&hex("0000 00 01 C0A8")), Err(UdpTunError::ShortDatagram)));
        // RSV is reported, not refused (gosocks5 reads past it).
        assert_eq!(decode_datagram(&hex("0005 00 01 C0A80101 0035")).unwrap().rsv, 5);
        assert_eq!(decode_datagram(&hex("0000 01 01 C0A80101 0035 AA")).unwrap().frag, 1);
    }

    #[test]
    fn rfc1928_datagrams_byte_for_byte() {
        // RFC 1928 §7 as a client sends it to the relay port: a DNS query to
        // 192.168.1.1:53, then a reply from [2001:db8::1]:53 and one naming a host.
        let mut v = Vec::new();
        encode_datagram(&Addr::parse("192.168.1.1:53").unwrap(), b"q", &mut v);
        assert_eq!(v, hex("0000 00 01 C0A80101 0035 71"));
        let mut v6 = Vec::new();
        encode_datagram(&Addr::parse("[2001:db8::1]:53").unwrap(), b"", &mut v6);
        assert_eq!(v6, hex("0000 00 04 20010DB8000000000000000000000001 0035"));
        let d = decode_datagram(&v6).unwrap();
        assert_eq!((d.addr.to_string().as_str(), d.payload.len()), ("[2001:db8::1]:53", 0));
        let mut name = Vec::new();
        encode_datagram(&Addr::parse("dns.example:53").unwrap(), b"xy", &mut name);
        assert_eq!(name, [&hex("0000 00 03 0B")[..], b"dns.example", &hex("0035")[..], b"xy"].concat());
        let d = decode_datagram(&name).unwrap();
        assert_eq!(&name[d.payload], b"xy");
        // Every cut inside the header is an error, never a panic or a bogus payload.
        for cut in 0..3 + 1 + 1 + 11 + 2 {
            assert!(decode_datagram(&name[..cut]).is_err(), "cut {cut}");
        }
        assert!(matches!(decode_datagram(&hex("0000 00 09 00")), Err(UdpTunError::Addr(AddrError::BadType(9)))));
    }
}
