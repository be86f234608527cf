//! SOCKS5 client, as GOST's `socks5` connector speaks it to the next hop
//! (go-gost/x `connector/socks/v5`), with GOST's TLS methods `80`/`82` unless
//! the node sets `notls` (then `Socks5Options::tls` is `None`).
//!
//! Every call that runs the handshake takes the stream by value and hands back
//! a [`MaybeTls`]: the same stream when the server chose a plain method, or the
//! stream wrapped in TLS when it chose `80`/`82`, which then carries the rest.

use crate::codec::addr::{Addr, Host};
use crate::connector::bind::{Dialect, MuxListener};
use crate::mux::MuxConfig;
use crate::codec::socks5::{
    self as s5, cmd, method, rep, Decoded, Message, Socks5Error, MAX_REQUEST_LEN,
};
use crate::framed::{read_message, ReadError};
use crate::tls::MaybeTls;
use rustls::pki_types::ServerName;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

#[derive(Clone, Default)]
pub struct Socks5Options {
    /// RFC 1929 credentials (user, password).
    pub auth: Option<(String, String)>,
    /// TLS for methods `80`/`82`: the node's `connector.tls` and the name to
    /// present ([`crate::tls::client_config`]). `None` (GOST's `notls=true`)
    /// offers only `00`/`02`.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl std::fmt::Debug for Socks5Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5Options").field("user", &self.auth.as_ref().map(|a| &a.0)).field("tls", &self.tls.is_some()).finish()
    }
}

/// The handshake's outcome: the stream the request goes on.
pub type Negotiated<S> = MaybeTls<S>;

#[derive(Debug, Clone, Default)]
pub struct Socks5Connector {
    opts: Socks5Options,
}

/// Maps a failed message read to an error naming the handshake step.
pub(crate) fn read_err(step: &'static str) -> impl Fn(ReadError<Socks5Error>) -> Socks5Error {
    move |e| match e {
        ReadError::Io(e) => Socks5Error::Io(e),
        ReadError::Closed => Socks5Error::Closed(step),
        ReadError::Oversized => Socks5Error::Oversized(step),
        ReadError::Decode(e) => e,
    }
}

pub(crate) async fn read_msg<S, T>(
    s: &mut S,
    max: usize,
    step: &'static str,
    decode: impl Fn(&[u8]) -> Result<Decoded<T>, Socks5Error>,
) -> Result<T, Socks5Error>
where
    S: AsyncRead + Unpin + ?Sized,
{
    read_message(s, max, decode).await.map_err(read_err(step))
}

async fn send<S: AsyncWrite + Unpin + ?Sized>(s: &mut S, bytes: &[u8]) -> Result<(), Socks5Error> {
    s.write_all(bytes).await?;
    s.flush().await?;
    Ok(())
}

impl Socks5Connector {
    pub fn new(opts: Socks5Options) -> Socks5Connector {
        Socks5Connector { opts }
    }

    /// Method negotiation (GOST's offer: `00`, `02` with credentials, `80`
    /// unless notls, `82` with both), then what the chosen method needs: TLS
    /// for `80`/`82`, RFC 1929 for `02`/`82` (inside TLS for `82`). The caller
    /// bounds the whole call with its timeout.
    pub async fn handshake<S>(&self, mut s: S) -> Result<Negotiated<S>, Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut out = Vec::with_capacity(6);
        s5::encode_methods(&s5::client_methods(self.opts.auth.is_some(), self.opts.tls.is_some()), &mut out);
        send(&mut s, &out).await?;
        let chosen = read_msg(&mut s, 2, "method selection", s5::decode_method_choice).await?;
        tracing::debug!("socks5: server chose method 0x{chosen:02x}");
        match (chosen, &self.opts.tls) {
            (method::NO_AUTH, _) => Ok(MaybeTls::Plain(s)),
            // A GOST v3.2.6 server with users answers 02 even to an offer of 00 alone.
            (method::USER_PASS, _) => {
                self.login(&mut s).await?;
                Ok(MaybeTls::Plain(s))
            }
            (method::TLS | method::TLS_AUTH, Some((config, name))) => {
                let mut t = tls_client(s, config, name, chosen).await?;
                // A stable GOST server with users answers 82 to an offer of 80.
                if chosen == method::TLS_AUTH {
                    self.login(&mut t).await?;
                }
                Ok(MaybeTls::Tls(Box::new(tokio_rustls::TlsStream::Client(t))))
            }
            (method::NONE_ACCEPTABLE, _) if self.opts.auth.is_none() => Err(Socks5Error::ServerRequiresAuth),
            (method::NONE_ACCEPTABLE, _) => Err(Socks5Error::NoMethodAccepted),
            (m, _) => Err(Socks5Error::UnexpectedMethod(m)),
        }
    }

    async fn login<S>(&self, s: &mut S) -> Result<(), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match &self.opts.auth {
            Some((user, pass)) => self.user_pass(s, user, pass).await,
            None => Err(Socks5Error::ServerRequiresAuth),
        }
    }

    async fn user_pass<S>(&self, s: &mut S, user: &str, pass: &str) -> Result<(), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let mut out = Vec::with_capacity(3 + user.len() + pass.len());
        s5::encode_user_pass(user, pass, &mut out)?;
        send(s, &out).await?;
        match read_msg(s, 2, "username/password authentication", s5::decode_auth_status).await? {
            0 => Ok(()),
            _ => Err(Socks5Error::AuthFailed(user.to_string())),
        }
    }

    /// Sends one request and reads its reply; a non-success reply is an error
    /// naming the command, the address and the reply code.
    async fn request<S>(&self, s: &mut S, code: u8, addr: &Addr) -> Result<Addr, Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        let mut out = Vec::with_capacity(3 + addr.encoded_len());
        Message::new(code, addr.clone()).encode(&mut out);
        send(s, &out).await?;
        read_reply(s, code, addr).await
    }

    /// Handshake + CONNECT to `target` (`host:port`); returns the stream to pipe
    /// and the server's BND address. An empty host means `127.0.0.1`, as GOST
    /// sends it.
    pub async fn connect<S>(&self, s: S, target: &str) -> Result<(Negotiated<S>, Addr), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let addr = connect_target(target)?;
        self.handshake_and_request(s, cmd::CONNECT, &addr).await
    }

    async fn handshake_and_request<S>(&self, s: S, code: u8, addr: &Addr) -> Result<(Negotiated<S>, Addr), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut s = self.handshake(s).await?;
        let bound = self.request(&mut s, code, addr).await?;
        Ok((s, bound))
    }

    /// Handshake + GOST UDP-TUN association (`F3` with `0.0.0.0:0`); returns the
    /// stream and the server's UDP socket address. From then on the stream
    /// carries `codec::udptun` frames (`framed::read_frame` / `write_frame`).
    pub async fn udp_tun<S>(&self, s: S) -> Result<(Negotiated<S>, Addr), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.handshake_and_request(s, cmd::UDP_TUN, &s5::zero_addr()).await
    }

    /// Handshake + standard UDP ASSOCIATE (`03` with `0.0.0.0:0`, as GOST's
    /// `relay=udp` sends it); returns the control stream and the relay address
    /// the server answered. The association lives as long as the stream stays
    /// open. See [`crate::connector::socks5_udp::associate`] for the datagram side.
    pub async fn udp_associate<S>(&self, s: S) -> Result<(Negotiated<S>, Addr), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.handshake_and_request(s, cmd::UDP_ASSOCIATE, &s5::zero_addr()).await
    }

    /// Handshake + plain BIND (`02`) asking the server to listen on `addr`; returns
    /// the stream and the first reply's address (where the server listens). Then
    /// call [`Socks5Connector::bind_accepted`] on that stream for the second reply.
    pub async fn bind<S>(&self, s: S, addr: &Addr) -> Result<(Negotiated<S>, Addr), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.handshake_and_request(s, cmd::BIND, addr).await
    }

    /// Waits for BIND's second reply: the address of the peer that connected.
    /// After it the stream carries that peer's bytes. The caller bounds the wait.
    pub async fn bind_accepted<S>(&self, s: &mut S, addr: &Addr) -> Result<Addr, Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        read_reply(s, cmd::BIND, addr).await
    }

    /// Handshake + MUX-BIND (`F2`, what GOST's rtcp asks a SOCKS5 hop for):
    /// the server listens on `addr` (`0.0.0.0:port` for `:port`). Returns the
    /// address it answered and the listener whose `accept` yields one stream per
    /// connection the server takes (§5.8 C). `control` becomes the smux session,
    /// run with `mux` (the connector's `mux.*`).
    pub async fn mux_bind<S>(&self, control: S, addr: &Addr, mux: MuxConfig) -> Result<(Addr, MuxListener), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (control, bound) = self.handshake_and_request(control, cmd::MUX_BIND, addr).await?;
        Ok((bound.clone(), MuxListener::new(control, bound, Dialect::Socks5, mux)))
    }

    /// Handshake + UDP-TUN bind (`F3` with a port, GOST's rudp through SOCKS5):
    /// the server listens on UDP `addr` and answers its socket address. From
    /// then on `control` carries `codec::udptun` frames: from the server, a
    /// datagram and the peer that sent it; to the server, a datagram and the
    /// peer to send it to ([`crate::framed::tun_split`]). Returns that stream.
    pub async fn udp_bind<S>(&self, control: S, addr: &Addr) -> Result<(Negotiated<S>, Addr), Socks5Error>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.handshake_and_request(control, cmd::UDP_TUN, addr).await
    }
}

/// The TLS client handshake right after the server chose `80`/`82`.
async fn tls_client<S>(s: S, config: &Arc<rustls::ClientConfig>, name: &ServerName<'static>, chosen: u8) -> Result<tokio_rustls::client::TlsStream<S>, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio_rustls::TlsConnector::from(config.clone())
        .connect(name.clone(), s)
        .await
        .map_err(|e| Socks5Error::TlsHandshake { method: chosen, reason: crate::tls::handshake_msg(&e) })
}

/// The SOCKS5 reply at the start of each MUX-BIND stream: the peer's address.
pub(crate) async fn read_peer_reply<S>(s: &mut S) -> Result<Addr, Socks5Error>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let reply = read_msg(s, MAX_REQUEST_LEN, "the peer address of a MUX-BIND stream", Message::decode).await?;
    if reply.code != rep::SUCCEEDED {
        return Err(Socks5Error::PeerFailed { cmd: s5::cmd_name(cmd::MUX_BIND), code: reply.code, text: s5::rep_text(reply.code) });
    }
    Ok(reply.addr)
}

async fn read_reply<S>(s: &mut S, code: u8, addr: &Addr) -> Result<Addr, Socks5Error>
where
    S: AsyncRead + Unpin + ?Sized,
{
    let reply = read_msg(s, MAX_REQUEST_LEN, "the reply to a request", Message::decode).await?;
    if reply.code != rep::SUCCEEDED {
        return Err(Socks5Error::Refused {
            cmd: s5::cmd_name(code),
            target: addr.to_string(),
            code: reply.code,
            text: s5::rep_text(reply.code),
        });
    }
    Ok(reply.addr)
}

/// `host:port` as CONNECT sends it: an empty host becomes 127.0.0.1
/// (go-gost/x `connector/socks/v5/connector.go`).
pub fn connect_target(target: &str) -> Result<Addr, Socks5Error> {
    let mut addr = Addr::parse(target)?;
    if target.starts_with(':') {
        addr.host = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_host_connects_to_loopback() {
        assert_eq!(connect_target(":8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(connect_target("0.0.0.0:1").unwrap().to_string(), "0.0.0.0:1");
        assert!(matches!(connect_target("nohost"), Err(Socks5Error::Addr(_))));
    }

    #[tokio::test]
    async fn example_a_bytes_on_the_wire() {
        // §5.8 A from the client's side against a scripted server.
        let (mut c, mut srv) = tokio::io::duplex(256);
        let server = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut b = [0u8; 3];
            srv.read_exact(&mut b).await.unwrap();
            assert_eq!(b, [5, 1, 0]);
            srv.write_all(&[5, 0]).await.unwrap();
            let mut r = [0u8; 10];
            srv.read_exact(&mut r).await.unwrap();
            assert_eq!(r, [5, 1, 0, 1, 0xC0, 0xA8, 1, 1, 0, 0x50]);
            srv.write_all(&[5, 0, 0, 1, 10, 0, 0, 2, 0x9C, 0x40, b'!']).await.unwrap();
            srv
        });
        let (mut c, bnd) = Socks5Connector::default().connect(&mut c, "192.168.1.1:80").await.unwrap();
        assert_eq!(bnd.to_string(), "10.0.0.2:40000");
        // The byte after the reply is still there for the data path.
        let mut x = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut c, &mut x).await.unwrap();
        assert_eq!(&x, b"!");
        server.await.unwrap();
    }
}
