#![no_main]
//! The HTTP proxy codec on arbitrary bytes: request and response heads,
//! Basic credentials, chunked bodies. Never a panic; a parsed head never claims
//! more bytes than it was given.
use libfuzzer_sys::fuzz_target;
use portway_core::codec::http;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(h)) = http::parse_request(data) {
        assert!(h.len <= data.len());
        let _ = http::plain_target(&h);
    }
    if let Ok(Some(h)) = http::parse_response(data) {
        assert!(h.len <= data.len());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = http::parse_basic(s);
        let _ = http::decode_gost_target(s);
    }
    let mut c = http::ChunkedScanner::new();
    for part in data.chunks(7) {
        match c.feed(part) {
            Ok(n) => assert!(n <= part.len()),
            Err(_) => break,
        }
    }
});
