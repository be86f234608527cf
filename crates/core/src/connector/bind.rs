//! Client side of a multiplexed BIND (GOST's rtcp over SOCKS5 MUX-BIND or relay
//! BIND): after the bind answer the control connection is an smux session in
//! which this side *accepts* streams, one per connection the server took on the
//! bound port, each starting with a short message naming that peer
//! (go-gost/x `connector/socks/v5/listener.go`, `connector/relay/listener.go`).

use crate::codec::addr::Addr;
use crate::mux::{MuxConfig, MuxSession, MuxStream};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long a new stream may take to name its peer. The server writes that
/// message right behind the SYN, so only a broken server gets near this.
pub const PEER_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Which message starts each stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `05 00 00 <peer addr>` (SOCKS5 reply).
    Socks5,
    /// `01 00 FLEN [Addr peer] …` (relay response).
    Relay,
}

/// The remote listener of a multiplexed BIND, seen from the client.
#[derive(Debug)]
pub struct MuxListener {
    session: MuxSession,
    bound: Addr,
    dialect: Dialect,
}

impl MuxListener {
    /// Takes over `control` right after a successful bind answer, with the
    /// connector's `mux.*` settings.
    pub fn new<S>(control: S, bound: Addr, dialect: Dialect, cfg: MuxConfig) -> MuxListener
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        MuxListener { session: MuxSession::server(control, cfg), bound, dialect }
    }

    /// Where the server listens, as it answered.
    pub fn bound(&self) -> &Addr {
        &self.bound
    }

    /// The next inbound connection: its stream (carrying the peer's bytes from
    /// here on) and the peer's address. `None` once the session ended — the
    /// server's listener is gone with it; [`MuxListener::close_reason`] says why.
    /// A stream whose first message is broken is dropped and logged, and the
    /// next one is waited for, so one bad stream does not end the listener.
    pub async fn accept(&self) -> Option<(MuxStream, Addr)> {
        loop {
            let mut stream = self.session.accept().await?;
            let read = tokio::time::timeout(PEER_HEADER_TIMEOUT, self.read_peer(&mut stream)).await;
            match read {
                Ok(Ok(peer)) => return Some((stream, peer)),
                Ok(Err(e)) => tracing::warn!("bind: dropping inbound stream {}: {e}", stream.id()),
                Err(_) => tracing::warn!("bind: dropping inbound stream {}: no peer address within {:?}", stream.id(), PEER_HEADER_TIMEOUT),
            }
        }
    }

    async fn read_peer(&self, stream: &mut MuxStream) -> io::Result<Addr> {
        match self.dialect {
            Dialect::Socks5 => Ok(super::socks5::read_peer_reply(stream).await?),
            Dialect::Relay => Ok(super::relay::read_peer_response(stream).await?),
        }
    }

    pub fn close_reason(&self) -> Option<String> {
        self.session.close_reason()
    }

    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// Ends the session, which makes the server close its listener.
    pub fn close(&self) {
        self.session.close()
    }
}
