#![no_main]
//! The smux frame decoder (v1 and v2, with v2's UPD) on arbitrary bytes: never
//! a panic, never a frame longer than the input, and every frame decoded from a
//! stream of frames encodes back to the bytes it came from (control frames
//! ignore LEN, as xtaci's reader does, so only their other fields are compared).
use libfuzzer_sys::fuzz_target;
use portway_core::codec::smux::{decode, encode, encode_upd, Frame, CMD_PSH, HEADER_LEN, VERSION_1, VERSION_2};

fuzz_target!(|data: &[u8]| {
    for version in [VERSION_1, VERSION_2] {
        let mut at = 0;
        while let Some(rest) = data.get(at..) {
            let Ok(Some((frame, used))) = decode(rest, version) else { break };
            assert!(used >= HEADER_LEN && used <= rest.len());
            let mut out = Vec::new();
            match frame {
                Frame::Psh(sid, payload) => {
                    encode(version, CMD_PSH, sid, payload, &mut out).expect("a decoded payload fits a frame");
                    assert_eq!(out, rest[..used]);
                }
                Frame::Upd { sid, consumed, window } => {
                    encode_upd(version, sid, consumed, window, &mut out);
                    assert_eq!(out.len(), used);
                    assert_eq!(out[..2], rest[..2]);
                    assert_eq!(out[4..], rest[4..used]);
                }
                Frame::Syn(sid) | Frame::Fin(sid) | Frame::Nop(sid) => {
                    assert_eq!(used, HEADER_LEN);
                    assert_eq!(rest[4..8], sid.to_le_bytes());
                }
            }
            at += used;
        }
    }
});
