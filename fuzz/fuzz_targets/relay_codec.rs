#![no_main]
//! The relay decoders on arbitrary bytes: never a panic, and whatever decodes
//! encodes back to the bytes it came from (features are kept, not normalised).
use libfuzzer_sys::fuzz_target;
use portway_core::codec::relay::{decode_datagram, Request, Response};

fuzz_target!(|data: &[u8]| {
    let _ = decode_datagram(data);
    let _ = Response::decode(data);
    if let Ok(Some((req, used))) = Request::decode(data) {
        let mut out = Vec::new();
        if req.encode(&mut out).is_ok() && out.len() == used {
            // Names are read lossily (non-UTF-8 bytes become U+FFFD), so only
            // same-length round trips are compared.
            if out != data[..used] {
                let lossy = data[..used].iter().any(|b| *b >= 0x80);
                assert!(lossy, "round trip changed a request");
            }
        }
    }
});
