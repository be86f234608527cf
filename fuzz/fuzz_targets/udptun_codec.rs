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
        if udptun::encode(&addr, &data[range], &mut out).is_ok() && data[..used].is_ascii() {
            assert_eq!(out, data[..used]);
        }
    }
    let _ = udptun::decode_datagram(data);
});
