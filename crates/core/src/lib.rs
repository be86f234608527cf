//! Portway's forwarding engine: GOST v3 configuration (YAML, JSON and the `-L`/`-F`
//! command line), services that forward TCP and UDP, selectors with GOST's
//! semantics, always-on statistics, and the profile store. No GUI dependency: the
//! desktop app and the `portway` CLI are thin shells over [`engine::Engine`].

pub mod auth;
pub mod chain;
pub mod codec;
pub mod conn;
pub mod connector;
pub mod config;
pub mod dialer;
pub mod engine;
pub mod framed;
pub mod handler;
pub mod io;
pub mod logging;
pub mod mmsg;
pub mod mux;
pub mod rule;
pub mod selector;
pub mod service;
pub mod stats;
pub mod store;
pub mod ssh;
pub mod sys;
pub mod tls;

pub use engine::{ApplyReport, Engine, EngineError, ServiceStatus};
