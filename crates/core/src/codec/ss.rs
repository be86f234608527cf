//! Shadowsocks AEAD framing as GOST's `ssu` connector and handler use it
//! (go-gost/x `internal/util/ss`, go-shadowsocks2 `shadowaead`):
//!
//! - UDP, one datagram each way: `salt | seal(ATYP ADDR PORT | payload)`.
//! - TCP (SIP004): `salt`, then chunks `seal(len u16) | seal(payload)`, at most
//!   0x3FFF payload bytes per chunk.
//!
//! The cipher itself (EVP_BytesToKey, HKDF-SHA1 subkeys, AEAD, nonce counter)
//! comes from the `shadowsocks-crypto` crate; this module only lays the bytes out.
//! Pure: no I/O, so every function can be unit-tested and fuzzed.

use super::addr::{Addr, AddrError};
use shadowsocks_crypto::v1::{openssl_bytes_to_key, Cipher};
use shadowsocks_crypto::CipherKind;
use std::fmt;
use std::io;

/// Largest payload in one stream chunk (SIP004).
pub const MAX_CHUNK: usize = 0x3FFF;
/// Largest UDP payload an IPv4 datagram can carry; bounds what we build.
pub const MAX_DATAGRAM: usize = 65507;

/// Methods accepted here, for error messages.
pub const SUPPORTED: &str = "aes-128-gcm, aes-256-gcm, chacha20-ietf-poly1305 (or none)";

#[derive(Debug, thiserror::Error)]
pub enum SsError {
    #[error("shadowsocks: cipher method {0:?} is not supported (supported: {SUPPORTED})")]
    UnknownMethod(String),
    #[error("shadowsocks: cipher {method} needs a {want}-byte key, but the key option has {got} bytes")]
    KeySize { method: String, want: usize, got: usize },
    #[error("shadowsocks: could not decrypt data from the peer (wrong password or cipher method, or not Shadowsocks)")]
    Decrypt,
    #[error("shadowsocks: packet of {0} bytes is too short to be Shadowsocks")]
    Short(usize),
    #[error("shadowsocks: bad target address in packet: {0}")]
    Addr(#[from] AddrError),
    #[error("shadowsocks: decrypted packet has no complete target address")]
    NoAddr,
    #[error("shadowsocks: datagram of {0} bytes is too large for UDP")]
    TooLarge(usize),
    #[error("shadowsocks: the peer closed the stream in the middle of an encrypted chunk")]
    Truncated,
    #[error("shadowsocks: {0}")]
    Io(#[from] io::Error),
}

impl From<SsError> for io::Error {
    fn from(e: SsError) -> io::Error {
        match e {
            SsError::Io(inner) => inner,
            SsError::Truncated => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            SsError::UnknownMethod(_) | SsError::KeySize { .. } => io::Error::new(io::ErrorKind::InvalidInput, e),
            e => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// A method and its master key. Debug never shows the key.
#[derive(Clone)]
pub struct SsCipher {
    kind: CipherKind,
    key: Vec<u8>,
}

impl fmt::Debug for SsCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SsCipher({})", self.kind)
    }
}

/// go-shadowsocks2 upper-cases the name and knows both the common names and its
/// own `AEAD_*` ones; `none`/`dummy` mean no encryption (GOST master).
fn kind_for(method: &str) -> Result<Option<CipherKind>, SsError> {
    let m = method.to_ascii_lowercase();
    Ok(Some(match m.as_str() {
        "aes-128-gcm" | "aead_aes_128_gcm" => CipherKind::AES_128_GCM,
        "aes-256-gcm" | "aead_aes_256_gcm" => CipherKind::AES_256_GCM,
        "chacha20-ietf-poly1305" | "aead_chacha20_poly1305" => CipherKind::CHACHA20_POLY1305,
        "none" | "dummy" | "plain" => return Ok(None),
        _ => return Err(SsError::UnknownMethod(method.to_string())),
    }))
}

impl SsCipher {
    /// GOST's `ShadowCipher`: `Ok(None)` (no encryption at all) when the method or
    /// the password is empty, or the method is `none`/`dummy`. A non-empty `key` is
    /// the raw master key and must have the cipher's key length; otherwise the key
    /// comes from the password (EVP_BytesToKey), as in go-shadowsocks2 `PickCipher`.
    pub fn new(method: &str, password: &str, key: Option<&[u8]>) -> Result<Option<SsCipher>, SsError> {
        if method.is_empty() || password.is_empty() {
            return Ok(None);
        }
        let Some(kind) = kind_for(method)? else { return Ok(None) };
        let want = kind.key_len();
        let key = match key {
            Some(k) if !k.is_empty() => {
                if k.len() != want {
                    return Err(SsError::KeySize { method: kind.to_string(), want, got: k.len() });
                }
                k.to_vec()
            }
            _ => {
                let mut k = vec![0u8; want];
                openssl_bytes_to_key(password.as_bytes(), &mut k);
                k
            }
        };
        Ok(Some(SsCipher { kind, key }))
    }

    pub fn method(&self) -> String {
        self.kind.to_string()
    }

    fn salt_len(&self) -> usize {
        self.kind.salt_len()
    }

    fn tag_len(&self) -> usize {
        self.kind.tag_len()
    }

    fn fresh_salt(&self) -> Vec<u8> {
        let mut salt = vec![0u8; self.salt_len()];
        shadowsocks_crypto::utils::random_iv_or_salt(&mut salt);
        salt
    }

    /// Appends `salt | seal(plaintext)` (one UDP packet).
    pub fn seal_packet(&self, plaintext: &[u8], out: &mut Vec<u8>) {
        let salt = self.fresh_salt();
        let mut c = Cipher::new(self.kind, &self.key, &salt);
        out.extend_from_slice(&salt);
        let body = out.len();
        out.extend_from_slice(plaintext);
        out.resize(out.len() + self.tag_len(), 0);
        c.encrypt_packet(&mut out[body..]);
    }

    /// Opens one UDP packet. Anything short or failing authentication is an error.
    pub fn open_packet(&self, packet: &[u8]) -> Result<Vec<u8>, SsError> {
        let (salt, body) = packet.split_at_checked(self.salt_len()).ok_or(SsError::Short(packet.len()))?;
        if body.len() < self.tag_len() {
            return Err(SsError::Short(packet.len()));
        }
        let mut buf = body.to_vec();
        let mut c = Cipher::new(self.kind, &self.key, salt);
        if !c.decrypt_packet(&mut buf) {
            return Err(SsError::Decrypt);
        }
        buf.truncate(body.len() - self.tag_len());
        Ok(buf)
    }
}

/// Appends one Shadowsocks UDP packet for `target` (plain `ADDR | payload` when
/// there is no cipher, as GOST sends it then).
pub fn encode_udp(cipher: Option<&SsCipher>, target: &Addr, payload: &[u8], out: &mut Vec<u8>) -> Result<(), SsError> {
    let mut plain = Vec::with_capacity(target.encoded_len() + payload.len());
    target.encode(&mut plain);
    plain.extend_from_slice(payload);
    let overhead = cipher.map_or(0, |c| c.salt_len() + c.tag_len());
    if plain.len() + overhead > MAX_DATAGRAM {
        return Err(SsError::TooLarge(plain.len() + overhead));
    }
    match cipher {
        Some(c) => c.seal_packet(&plain, out),
        None => out.extend_from_slice(&plain),
    }
    Ok(())
}

/// Opens one Shadowsocks UDP packet: the address it names and its payload.
pub fn decode_udp(cipher: Option<&SsCipher>, packet: &[u8]) -> Result<(Addr, Vec<u8>), SsError> {
    let mut plain = match cipher {
        Some(c) => c.open_packet(packet)?,
        None => packet.to_vec(),
    };
    let (addr, used) = Addr::decode(&plain)?.ok_or(SsError::NoAddr)?;
    plain.drain(..used);
    Ok((addr, plain))
}

/// Encrypting half of a SIP004 stream. The salt goes out in front of the first chunk.
pub struct StreamSealer {
    salt: Option<Vec<u8>>,
    cipher: Cipher,
    tag_len: usize,
}

impl StreamSealer {
    pub fn new(c: &SsCipher) -> StreamSealer {
        let salt = c.fresh_salt();
        let cipher = Cipher::new(c.kind, &c.key, &salt);
        StreamSealer { salt: Some(salt), cipher, tag_len: c.tag_len() }
    }

    /// Appends `data` as chunks of at most [`MAX_CHUNK`] bytes. Empty data adds nothing.
    pub fn seal(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for piece in data.chunks(MAX_CHUNK) {
            if let Some(salt) = self.salt.take() {
                out.extend_from_slice(&salt);
            }
            // `piece` is at most 0x3FFF long, so the cast cannot truncate.
            let len = (piece.len() as u16).to_be_bytes();
            self.seal_one(&len, out);
            self.seal_one(piece, out);
        }
    }

    fn seal_one(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(plain);
        out.resize(out.len() + self.tag_len, 0);
        self.cipher.encrypt_packet(&mut out[at..]);
    }
}

/// Decrypting half of a SIP004 stream, fed with whatever bytes arrive.
pub struct StreamOpener {
    key: SsCipher,
    cipher: Option<Cipher>,
    buf: Vec<u8>,
    /// Payload length announced by the last length chunk.
    pending: Option<usize>,
    failed: bool,
}

impl StreamOpener {
    pub fn new(c: &SsCipher) -> StreamOpener {
        StreamOpener { key: c.clone(), cipher: None, buf: Vec::new(), pending: None, failed: false }
    }

    /// Bytes still missing before [`next_chunk`](Self::next_chunk) can make progress: the
    /// most a reader should read, which keeps the buffer bounded.
    pub fn need(&self) -> usize {
        let tag = self.key.tag_len();
        let step = match (&self.cipher, self.pending) {
            (None, _) => self.key.salt_len(),
            (Some(_), None) => 2 + tag,
            (Some(_), Some(n)) => n + tag,
        };
        step.saturating_sub(self.buf.len()).max(1)
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether nothing of a chunk (or the salt) has arrived yet: EOF here is clean.
    pub fn at_boundary(&self) -> bool {
        self.buf.is_empty() && self.pending.is_none()
    }

    /// The next decrypted chunk, `Ok(None)` when more bytes are needed. After an
    /// error every later call fails too: the stream cannot be resynchronised.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SsError> {
        if self.failed {
            return Err(SsError::Decrypt);
        }
        let r = self.step();
        if r.is_err() {
            self.failed = true;
            self.buf.clear();
        }
        r
    }

    fn step(&mut self) -> Result<Option<Vec<u8>>, SsError> {
        let tag = self.key.tag_len();
        loop {
            let Some(cipher) = self.cipher.as_mut() else {
                let sl = self.key.salt_len();
                if self.buf.len() < sl {
                    return Ok(None);
                }
                self.cipher = Some(Cipher::new(self.key.kind, &self.key.key, &self.buf[..sl]));
                self.buf.drain(..sl);
                continue;
            };
            let want = self.pending.unwrap_or(2) + tag;
            let Some(sealed) = self.buf.get(..want) else { return Ok(None) };
            let mut plain = sealed.to_vec();
            if !cipher.decrypt_packet(&mut plain) {
                return Err(SsError::Decrypt);
            }
            plain.truncate(want - tag);
            self.buf.drain(..want);
            match self.pending.take() {
                Some(_) => return Ok(Some(plain)),
                None => {
                    let [hi, lo] = plain[..] else { return Err(SsError::Decrypt) };
                    // go-shadowsocks2 masks the two top bits rather than refusing them.
                    self.pending = Some(usize::from(u16::from_be_bytes([hi, lo])) & MAX_CHUNK);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    const METHODS: [&str; 3] = ["aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"];

    fn cipher(m: &str, pw: &str) -> SsCipher {
        SsCipher::new(m, pw, None).unwrap().unwrap()
    }

    #[test]
    fn evp_bytes_to_key_matches_the_reference_kdf() {
        // MD5("foobar") is 3858f62230ac3c915f300c664312c63f; the second block is
        // MD5(first block | "foobar"): the 32-byte key is their concatenation.
        let c = cipher("aes-256-gcm", "foobar");
        assert_eq!(&c.key[..16], &hex("3858f62230ac3c915f300c664312c63f")[..]);
        assert_eq!(c.key.len(), 32);
        assert_eq!(cipher("aes-128-gcm", "foobar").key, hex("3858f62230ac3c915f300c664312c63f"));
    }

    #[test]
    fn method_names_follow_go_shadowsocks2() {
        assert_eq!(cipher("AES-256-GCM", "p").kind, CipherKind::AES_256_GCM);
        assert_eq!(cipher("AEAD_CHACHA20_POLY1305", "p").kind, CipherKind::CHACHA20_POLY1305);
        assert!(SsCipher::new("none", "p", None).unwrap().is_none());
        assert!(SsCipher::new("aes-128-gcm", "", None).unwrap().is_none());
        assert!(SsCipher::new("", "p", None).unwrap().is_none());
        let e = SsCipher::new("aes-256-cfb", "p", None).unwrap_err();
        assert_eq!(e.to_string(), format!("shadowsocks: cipher method \"aes-256-cfb\" is not supported (supported: {SUPPORTED})"));
        let e = SsCipher::new("aes-128-gcm", "p", Some(b"short")).unwrap_err();
        assert!(e.to_string().contains("needs a 16-byte key, but the key option has 5 bytes"), "{e}");
        let raw = SsCipher::new("aes-128-gcm", "p", Some(b"0123456789abcdef")).unwrap().unwrap();
        assert_eq!(raw.key, b"0123456789abcdef");
        // The password must never show up in Debug output.
        assert_eq!(format!("{:?}", cipher("aes-128-gcm", "hunter2")), "SsCipher(aes-128-gcm)");
    }

    #[test]
    fn udp_packet_layout_and_round_trip() {
        let target = Addr::parse("192.168.1.1:53").unwrap();
        for m in METHODS {
            let c = cipher(m, "pw");
            let mut pkt = Vec::new();
            encode_udp(Some(&c), &target, b"query", &mut pkt).unwrap();
            // salt | ADDR(7) + payload(5) | tag(16)
            assert_eq!(pkt.len(), c.salt_len() + 7 + 5 + 16, "{m}");
            let plain = c.open_packet(&pkt).unwrap();
            assert_eq!(plain, [hex("01 C0A80101 0035"), b"query".to_vec()].concat());
            let (a, p) = decode_udp(Some(&c), &pkt).unwrap();
            assert_eq!((a, p.as_slice()), (target.clone(), &b"query"[..]));
            // Another password, a flipped bit, and every truncation fail cleanly.
            assert!(matches!(decode_udp(Some(&cipher(m, "other")), &pkt), Err(SsError::Decrypt)));
            let mut bad = pkt.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(matches!(decode_udp(Some(&c), &bad), Err(SsError::Decrypt)));
            for cut in 0..pkt.len() {
                assert!(decode_udp(Some(&c), &pkt[..cut]).is_err(), "{m} cut {cut}");
            }
        }
        // No cipher: the bare SOCKS address and payload.
        let mut pkt = Vec::new();
        encode_udp(None, &target, b"q", &mut pkt).unwrap();
        assert_eq!(pkt, hex("01 C0A80101 0035 71"));
        assert!(matches!(decode_udp(None, &hex("09 00")), Err(SsError::Addr(AddrError::BadType(9)))));
        assert!(matches!(decode_udp(None, &hex("01 C0A8")), Err(SsError::NoAddr)));
        let c = cipher("aes-128-gcm", "pw");
        assert!(matches!(encode_udp(Some(&c), &target, &vec![0; 65500], &mut Vec::new()), Err(SsError::TooLarge(_))));
    }

    #[test]
    fn stream_round_trip_in_every_split() {
        for m in METHODS {
            let c = cipher(m, "pw");
            let mut s = StreamSealer::new(&c);
            let mut wire = Vec::new();
            s.seal(b"hello", &mut wire);
            s.seal(&[], &mut wire);
            s.seal(&vec![7u8; MAX_CHUNK + 10], &mut wire);
            // salt, then (2+16) + (5+16), then two chunks for the big write.
            assert_eq!(wire.len(), c.salt_len() + 18 + 21 + 18 + MAX_CHUNK + 16 + 18 + 10 + 16);
            for split in [1usize, 3, 17, 4096, wire.len()] {
                let mut o = StreamOpener::new(&c);
                let mut got = Vec::new();
                for piece in wire.chunks(split) {
                    assert!(o.need() >= 1);
                    o.push(piece);
                    while let Some(chunk) = o.next_chunk().unwrap() {
                        got.extend_from_slice(&chunk);
                    }
                }
                assert!(o.at_boundary());
                assert_eq!(got.len(), 5 + MAX_CHUNK + 10);
                assert_eq!(&got[..5], b"hello");
                assert!(got[5..].iter().all(|b| *b == 7));
            }
        }
    }

    #[test]
    fn stream_with_wrong_key_or_garbage_fails_and_stays_failed() {
        let c = cipher("chacha20-ietf-poly1305", "pw");
        let mut s = StreamSealer::new(&c);
        let mut wire = Vec::new();
        s.seal(b"hello", &mut wire);
        let mut o = StreamOpener::new(&cipher("chacha20-ietf-poly1305", "nope"));
        o.push(&wire);
        assert!(matches!(o.next_chunk(), Err(SsError::Decrypt)));
        o.push(&wire);
        assert!(matches!(o.next_chunk(), Err(SsError::Decrypt)));
        let mut o = StreamOpener::new(&c);
        o.push(&[0xAB; 200]);
        assert!(o.next_chunk().is_err());
        // Half a chunk is "need more", and not a clean boundary.
        let mut o = StreamOpener::new(&c);
        o.push(&wire[..wire.len() - 3]);
        assert!(o.next_chunk().unwrap().is_none());
        assert!(!o.at_boundary());
        assert_eq!(o.need(), 3);
    }
}
