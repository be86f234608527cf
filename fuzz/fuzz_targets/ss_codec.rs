#![no_main]
//! The Shadowsocks decoders on arbitrary bytes: never a panic, whatever the
//! split, with and without a cipher; a packet we seal opens to what went in.
use libfuzzer_sys::fuzz_target;
use portway_core::codec::ss::{decode_udp, encode_udp, SsCipher, StreamOpener};

fuzz_target!(|data: &[u8]| {
    let Ok(Some(c)) = SsCipher::new("chacha20-ietf-poly1305", "fuzz", None) else { return };
    let _ = decode_udp(None, data);
    let _ = decode_udp(Some(&c), data);
    let split = data.first().map_or(1, |b| usize::from(*b).max(1));
    let mut o = StreamOpener::new(&c);
    for piece in data.chunks(split) {
        o.push(piece);
        if o.next_chunk().is_err() {
            break;
        }
    }
    if let Ok((addr, payload)) = decode_udp(None, data) {
        let mut pkt = Vec::new();
        if encode_udp(Some(&c), &addr, &payload, &mut pkt).is_ok() {
            let (a2, p2) = decode_udp(Some(&c), &pkt).expect("our own packet opens");
            assert_eq!((a2, p2), (addr, payload));
        }
    }
});
