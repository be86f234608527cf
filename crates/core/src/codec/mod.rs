//! Pure wire codecs: bytes in, values out, and back. No I/O here, so each can be
//! unit-tested against the byte examples in GOST's sources and fuzzed.
pub mod addr;
pub mod http;
pub mod relay;
pub mod socks4;
pub mod smux;
pub mod socks5;
pub mod ss;
pub mod udptun;
