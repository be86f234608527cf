//! Pure wire codecs: bytes in, values out, and back. No I/O here, so each can be
//! unit-tested against the byte examples in GOST's sources and fuzzed.
pub mod addr;
pub mod relay;
