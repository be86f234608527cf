//! A deterministic fuzz smoke test of every protocol codec that runs in CI:
//! mutations of real messages and random bytes through each decoder. A panic,
//! an out-of-range result or a demand for unbounded input fails. (The cargo-fuzz
//! targets in `fuzz/` do the same coverage-guided, without a bound.)

use portway_core::codec::addr::Addr;
use portway_core::codec::socks5::{self, Decoded, Message};
use portway_core::codec::{http, relay, socks4, udptun};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut m = Vec::new();
    Message::new(socks5::cmd::CONNECT, Addr::parse("example.com:443").unwrap()).encode(&mut m);
    v.push(m);
    v.push(vec![5, 2, 0, 2]);
    v.push(vec![1, 1, b'u', 1, b'p']);
    let mut f = Vec::new();
    udptun::encode(&Addr::parse("127.0.0.1:53").unwrap(), b"query", &mut f).unwrap();
    v.push(f);
    let mut r = Vec::new();
    relay::Request::connect(&Addr::parse("10.0.0.1:80").unwrap(), relay::Network::Udp, Some(("u", "p"))).encode(&mut r).unwrap();
    v.push(r);
    v.push(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n".to_vec());
    v.push(b"GET http://h:81/p?q HTTP/1.1\r\nHost: h:81\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec());
    v.push(b"HTTP/1.1 200 Connection established\r\nProxy-Agent: gost/3.0\r\n\r\n".to_vec());
    v.push(vec![4, 1, 0, 80, 0, 0, 0, 1, b'u', 0, b'h', b'.', b'c', 0]);
    for (addr, payload) in [("192.168.1.1:53", &b"dns query"[..]), ("[::1]:9", b""), ("dns.example:53", b"q")] {
        let mut d = Vec::new();
        udptun::encode_datagram(&Addr::parse(addr).unwrap(), payload, &mut d);
        v.push(d);
    }
    v
}

fn mutate(rng: &mut Lcg, src: &[u8]) -> Vec<u8> {
    let mut d = src.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d.truncate(i);
            }
            2 => {
                let i = rng.below(d.len() + 1);
                d.insert(i, rng.next() as u8);
            }
            3 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = [0, 0xff, 0x7f, 0x80, 3, 4][rng.below(6)];
            }
            _ => d.extend((0..rng.below(8)).map(|_| rng.next() as u8)),
        }
    }
    d
}

fn check(data: &[u8]) {
    if let Ok(Some((_, used))) = Addr::decode(data) {
        assert!(used <= data.len());
    }
    if let Ok(Decoded::Done(offered, _)) = socks5::decode_methods(data) {
        for (auth, tls) in [(false, false), (false, true), (true, false), (true, true)] {
            let m = portway_core::handler::socks5::choose_method(&offered, auth, tls);
            assert!(m == socks5::method::NONE_ACCEPTABLE || offered.contains(&m), "chose {m:#x}, not offered");
            assert!(tls || !matches!(m, socks5::method::TLS | socks5::method::TLS_AUTH), "TLS method with notls");
        }
    }
    let _ = socks5::decode_user_pass(data);
    if let Ok(Decoded::Need(n)) = Message::decode(data) {
        assert!(data.len() + n <= socks5::MAX_REQUEST_LEN);
    }
    let _ = socks4::Request::decode(data);
    let _ = socks4::Reply::decode(data);
    if let Ok(Some((_, range, used))) = udptun::decode(data) {
        assert!(range.end <= used && used <= data.len());
    }
    if let Ok(d) = udptun::decode_datagram(data) {
        assert!(d.payload.start <= d.payload.end && d.payload.end == data.len());
        assert!(d.payload.start <= udptun::MAX_DATAGRAM_HEADER_LEN);
        // An unfragmented datagram with RSV 0 encodes back to the same bytes.
        if d.rsv == 0 && d.frag == 0 && data[..d.payload.start].is_ascii() {
            let mut out = Vec::new();
            udptun::encode_datagram(&d.addr, &data[d.payload.clone()], &mut out);
            assert_eq!(out, data);
        }
    }
    if let Ok(Some((_, used))) = relay::Request::decode(data) {
        assert!(used <= data.len());
    }
    let _ = relay::Response::decode(data);
    let _ = relay::decode_datagram(data);
    if let Ok(Some(h)) = http::parse_request(data) {
        assert!(h.len <= data.len());
        let _ = http::plain_target(&h);
    }
    if let Ok(Some(h)) = http::parse_response(data) {
        assert!(h.len <= data.len());
    }
    let mut c = http::ChunkedScanner::new();
    for part in data.chunks(5) {
        match c.feed(part) {
            Ok(n) => assert!(n <= part.len()),
            Err(_) => break,
        }
    }
}

#[test]
fn every_codec_survives_mutated_and_random_input() {
    let mut rng = Lcg(0x5eed_cafe);
    let seeds = seeds();
    for s in &seeds {
        check(s);
    }
    for i in 0..30_000 {
        let data = if i % 5 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let s = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, s)
        };
        check(&data);
    }
}

/// The smux decoder, v1 and v2 (with UPD), the same way: mutated frame
/// streams and random bytes never panic, never yield a frame longer than the
/// input, and data and UPD frames encode back to their bytes.
#[test]
fn smux_decoder_survives_mutated_and_random_input() {
    use portway_core::codec::smux::{self, Frame};
    let mut v1 = Vec::new();
    smux::encode(1, smux::CMD_SYN, 3, &[], &mut v1).unwrap();
    smux::encode(1, smux::CMD_PSH, 3, b"\x05\x00\x00\x01\xcb\x00\x71\x09\x9c\x40", &mut v1).unwrap();
    smux::encode(1, smux::CMD_FIN, 3, &[], &mut v1).unwrap();
    let mut v2 = Vec::new();
    smux::encode(2, smux::CMD_SYN, 2, &[], &mut v2).unwrap();
    smux::encode(2, smux::CMD_PSH, 2, &[7u8; 300], &mut v2).unwrap();
    smux::encode_upd(2, 2, 300, 65536, &mut v2);
    smux::encode(2, smux::CMD_NOP, 0, &[], &mut v2).unwrap();
    let seeds = [v1, v2];
    let check = |data: &[u8]| {
        for version in [smux::VERSION_1, smux::VERSION_2] {
            let mut at = 0;
            while let Some(rest) = data.get(at..) {
                let Ok(Some((frame, used))) = smux::decode(rest, version) else { break };
                assert!(used >= smux::HEADER_LEN && used <= rest.len());
                let mut out = Vec::new();
                match frame {
                    Frame::Psh(sid, p) => {
                        smux::encode(version, smux::CMD_PSH, sid, p, &mut out).unwrap();
                        assert_eq!(out, rest[..used]);
                    }
                    Frame::Upd { sid, consumed, window } => {
                        smux::encode_upd(version, sid, consumed, window, &mut out);
                        assert_eq!((&out[..2], &out[4..]), (&rest[..2], &rest[4..used]));
                    }
                    _ => assert_eq!(used, smux::HEADER_LEN),
                }
                at += used;
            }
        }
    };
    let mut rng = Lcg(0x5eed_5eed);
    for s in &seeds {
        check(s);
    }
    for i in 0..20_000 {
        let data: Vec<u8> = if i % 5 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let s = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, s)
        };
        check(&data);
    }
}
