#![no_main]
//! SOCKS5/SOCKS4 decoders and the SOCKS address on arbitrary bytes: never a
//! panic, never a demand for more bytes than a message can hold, and every
//! address that decodes encodes back to the same bytes.
use libfuzzer_sys::fuzz_target;
use portway_core::codec::addr::Addr;
use portway_core::codec::socks4;
use portway_core::codec::socks5::{self, Decoded, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((a, used))) = Addr::decode(data) {
        let mut out = Vec::new();
        a.encode(&mut out);
        if !matches!(a.host, portway_core::codec::addr::Host::Domain(_)) || data[..used].is_ascii() {
            assert_eq!(out, data[..used], "address round trip");
        }
    }
    // The server's choice (GOST master's rule, TLS methods 80/82 included):
    // something the client offered, or FF; a TLS method only with TLS on.
    if let Ok(Decoded::Done(offered, _)) = socks5::decode_methods(data) {
        for (auth, tls) in [(false, false), (false, true), (true, false), (true, true)] {
            let m = portway_core::handler::socks5::choose_method(&offered, auth, tls);
            assert!(m == socks5::method::NONE_ACCEPTABLE || offered.contains(&m), "chose {m:#x}, not offered");
            assert!(tls || !matches!(m, socks5::method::TLS | socks5::method::TLS_AUTH), "TLS method with notls");
        }
    }
    let _ = socks5::decode_method_choice(data);
    let _ = socks5::decode_user_pass(data);
    let _ = socks5::decode_auth_status(data);
    if let Ok(Decoded::Need(n)) = Message::decode(data) {
        assert!(data.len() + n <= socks5::MAX_REQUEST_LEN, "asks for more than a request can hold");
    }
    // The SOCKS5 UDP ASSOCIATE header (codec::udptun): payload inside the input.
    if let Ok(d) = portway_core::codec::udptun::decode_datagram(data) {
        assert!(d.payload.start <= d.payload.end && d.payload.end == data.len());
    }
    let _ = socks4::Request::decode(data);
    let _ = socks4::Reply::decode(data);
});
