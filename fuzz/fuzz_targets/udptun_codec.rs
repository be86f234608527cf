#![no_main]
//! GOST's UDP-over-stream frame and the RFC 1928 UDP header on arbitrary bytes:
//! never a panic, ranges always inside the input, and a decoded frame encodes
//! back to the same bytes.
use libfuzzer_sys::fuzz_target;
use portway_core::codec::udptun;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((addr, range, used))) = udptun::decode(data) {
        assert!(range.end <= used && used <= data.len());
        let mut out = Vec::new();
        // FRAG is not kept (readers ignore it; the writer always puts 0xFF), and a
        // name that is not ASCII may not come back byte for byte.
        if udptun::encode(&addr, &data[range], &mut out).is_ok() && data[3..used].is_ascii() {
            assert_eq!(out[..2], data[..2]);
            assert_eq!(out[3..], data[3..used]);
        }
    }
    datagram(data);
});

/// RFC 1928 UDP ASSOCIATE datagram: the payload is the rest of the input, and an
/// unfragmented one with RSV 0 encodes back to the same bytes.
fn datagram(data: &[u8]) {
    let Ok(d) = udptun::decode_datagram(data) else { return };
    assert!(d.payload.start <= d.payload.end && d.payload.end == data.len());
    assert!(d.payload.start <= udptun::MAX_DATAGRAM_HEADER_LEN);
    if d.rsv == 0 && d.frag == 0 && data[..d.payload.start].is_ascii() {
        let mut out = Vec::new();
        udptun::encode_datagram(&d.addr, &data[d.payload.clone()], &mut out);
        assert_eq!(out, data);
    }
}
