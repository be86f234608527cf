//! TLS for the `tls` listener and dialer (and the `+tls` compositions) with
//! GOST's defaults (go-gost/x `internal/util/tls`, `config/parsing/tls.go`):
//!
//! * a server without `certFile`/`keyFile` uses a self-signed certificate made at
//!   start (ECDSA P-256, CN and SAN `gost.run`, as GOST generates it) — so a GOST
//!   client that checks nothing and a Portway client connect alike;
//! * a server with `caFile` (and its own cert) requires client certificates;
//! * a client verifies nothing unless `secure: true` (GOST's `InsecureSkipVerify =
//!   !secure`); with `caFile` but not `secure` it checks the chain against the CA
//!   but not the name; `serverName` defaults to the node's host.

use crate::config::types::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::sync::{Arc, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: cannot read {what} {path:?}: {msg}")]
    File { what: &'static str, path: String, msg: String },
    #[error("tls: {path:?} holds no {what}")]
    Empty { what: &'static str, path: String },
    #[error("tls: {0}")]
    Config(String),
    #[error("tls: serverName {0:?} is not a valid host name")]
    ServerName(String),
}

fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    // The same suites in Go's order (GOST's crypto/tls, on CPUs with AES in
    // hardware): AES-128-GCM first. Its SHA-256 key schedule costs less per
    // handshake than AES-256's SHA-384, which matters for in-band TLS, where
    // every SOCKS5 connection through a hop makes one.
    p.cipher_suites.sort_by_key(|s| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        _ => 3,
    });
    Arc::new(p)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let it = CertificateDer::pem_file_iter(path).map_err(|e| TlsError::File { what: "certificate file", path: path.into(), msg: pem_msg(&e) })?;
    let certs: Vec<_> = it.collect::<Result<_, _>>().map_err(|e| TlsError::File { what: "certificate file", path: path.into(), msg: pem_msg(&e) })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what: "PEM certificate", path: path.into() });
    }
    Ok(certs)
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty { what: "PEM private key", path: path.into() },
        e => TlsError::File { what: "key file", path: path.into(), msg: pem_msg(&e) },
    })
}

fn pem_msg(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => crate::service::io_msg(io),
        other => other.to_string(),
    }
}

fn roots(ca_file: &str) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in load_certs(ca_file)? {
        store.add(c).map_err(|e| TlsError::Config(format!("caFile {ca_file:?}: {e}")))?;
    }
    Ok(store)
}

/// The self-signed certificate servers use when given none, made once per process.
fn default_cert() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    type DerPair = (Vec<u8>, Vec<u8>);
    static CERT: OnceLock<Result<DerPair, String>> = OnceLock::new();
    let made = CERT.get_or_init(|| {
        let mut params = rcgen::CertificateParams::new(vec!["gost.run".to_string()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "gost.run");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "GOST");
        let now = time_now();
        params.not_before = now;
        params.not_after = now + rcgen_duration_days(365);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        Ok((cert.der().to_vec(), key.serialize_der()))
    });
    match made {
        Ok((cert, key)) => {
            let key = PrivateKeyDer::try_from(key.clone()).map_err(|e| TlsError::Config(e.to_string()))?;
            Ok((vec![CertificateDer::from(cert.clone())], key))
        }
        Err(e) => Err(TlsError::Config(format!("cannot generate a certificate: {e}"))),
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn rcgen_duration_days(d: i64) -> time::Duration {
    time::Duration::days(d)
}

/// A server's TLS setup (`listener.tls` or `handler.tls`), GOST's defaults where unset.
pub fn server_config(tls: Option<&TlsConfig>) -> Result<Arc<ServerConfig>, TlsError> {
    let tls = tls.cloned().unwrap_or_default();
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| TlsError::Config(e.to_string()))?;
    let own = !tls.cert_file.is_empty() && !tls.key_file.is_empty();
    let (certs, key) = if own { (load_certs(&tls.cert_file)?, load_key(&tls.key_file)?) } else { default_cert()? };
    // GOST verifies client certificates only with its own cert and key given.
    let builder = if own && !tls.ca_file.is_empty() {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&tls.ca_file)?), provider())
            .build()
            .map_err(|e| TlsError::Config(format!("caFile {:?}: {e}", tls.ca_file)))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let cfg = builder.with_single_cert(certs, key).map_err(|e| TlsError::Config(format!("certificate and key do not go together: {e}")))?;
    Ok(Arc::new(cfg))
}

/// A client's TLS setup for a node at `node_addr`; returns the config and the name
/// to present (SNI) and check.
pub fn client_config(tls: Option<&TlsConfig>, node_addr: &str) -> Result<(Arc<ClientConfig>, ServerName<'static>), TlsError> {
    let tls = tls.cloned().unwrap_or_default();
    let host = crate::config::validate::split_host_port(node_addr).map(|(h, _)| h).unwrap_or("");
    let name = if tls.server_name.is_empty() { host.to_string() } else { tls.server_name.clone() };
    // Go sends no name for an empty host; rustls needs one, and an IP name is
    // never sent as SNI, so `0.0.0.0` stands in.
    let server_name = if name.is_empty() {
        ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into())
    } else {
        ServerName::try_from(name.clone()).map_err(|_| TlsError::ServerName(name.clone()))?
    };
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().map_err(|e| TlsError::Config(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.secure && tls.ca_file.is_empty() {
        WebPkiServerVerifier::builder_with_provider(Arc::new(system_roots()?), provider()).build().map_err(|e| TlsError::Config(e.to_string()))?
    } else if !tls.ca_file.is_empty() {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots(&tls.ca_file)?), provider()).build().map_err(|e| TlsError::Config(e.to_string()))?;
        Arc::new(CaFile { inner, pinned: load_certs(&tls.ca_file)?, check_name: tls.secure })
    } else {
        Arc::new(NoVerify(provider()))
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let cfg = if !tls.cert_file.is_empty() && !tls.key_file.is_empty() {
        builder
            .with_client_auth_cert(load_certs(&tls.cert_file)?, load_key(&tls.key_file)?)
            .map_err(|e| TlsError::Config(format!("client certificate and key do not go together: {e}")))?
    } else {
        builder.with_no_client_auth()
    };
    Ok((Arc::new(cfg), server_name))
}

fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    for c in found.certs {
        let _ = store.add(c);
    }
    if store.is_empty() {
        return Err(TlsError::Config("secure: true but this system has no CA certificates (install ca-certificates or set caFile)".into()));
    }
    Ok(store)
}

/// `secure: false` (GOST's default): accept any certificate, but still check the
/// handshake signatures so the session keys belong to the certificate shown.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Verification against `caFile`, as Go does it:
/// * the certificate in `caFile` may itself be the server's certificate — the
///   usual `openssl req -x509` self-signed one, which is marked as a CA and which
///   WebPKI alone would refuse as a leaf ("CA used as end entity"); Go trusts a
///   certificate found in its root pool directly;
/// * without `secure` the chain is checked but not the name (GOST verifies the
///   chain by hand in that case).
#[derive(Debug)]
struct CaFile {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    check_name: bool,
}

impl ServerCertVerifier for CaFile {
    fn verify_server_cert(&self, ee: &CertificateDer<'_>, im: &[CertificateDer<'_>], name: &ServerName<'_>, ocsp: &[u8], now: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        match self.inner.verify_server_cert(ee, im, name, ocsp, now) {
            Ok(v) => Ok(v),
            Err(rustls::Error::InvalidCertificate(C::NotValidForName)) | Err(rustls::Error::InvalidCertificate(C::NotValidForNameContext { .. })) if !self.check_name => {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => {
                if !self.pinned.iter().any(|p| p.as_ref() == ee.as_ref()) {
                    return Err(e);
                }
                let cert = webpki::EndEntityCert::try_from(ee).map_err(|e| rustls::Error::General(format!("certificate: {e}")))?;
                if self.check_name {
                    cert.verify_is_valid_for_subject_name(name).map_err(|_| rustls::Error::InvalidCertificate(C::NotValidForName))?;
                }
                Ok(ServerCertVerified::assertion())
            }
        }
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS failure as a user reads it ("tls handshake with 127.0.0.1:8443: …").
pub fn handshake_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    if let Some(inner) = e.get_ref() {
        return inner.to_string();
    }
    s
}

/// A stream that may have switched to TLS part-way, after some plain bytes
/// (GOST's SOCKS5 methods `80`/`82`). `Plain` keeps the original stream as it
/// was, so a plain `TcpStream` can still be taken out and spliced.
pub enum MaybeTls<S> {
    Plain(S),
    Tls(Box<tokio_rustls::TlsStream<S>>),
}

impl<S> MaybeTls<S> {
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTls::Tls(_))
    }

    /// The stream under any TLS layer (for addresses, not for I/O).
    pub fn get_ref(&self) -> &S {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::Tls(t) => t.get_ref().0,
        }
    }
}

impl MaybeTls<crate::conn::Conn> {
    /// Back to a [`crate::conn::Conn`]: the untouched connection when no TLS
    /// ran (so the data path's fast path still applies), else a boxed stream.
    pub fn into_conn(self) -> crate::conn::Conn {
        match self {
            MaybeTls::Plain(c) => c,
            MaybeTls::Tls(t) => crate::conn::Conn::boxed(*t),
        }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead for MaybeTls<S> {
    fn poll_read(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for MaybeTls<S> {
    fn poll_write(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(t) => std::pin::Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

impl<S> std::fmt::Debug for MaybeTls<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_tls() { "MaybeTls::Tls" } else { "MaybeTls::Plain" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_are_offered_in_gos_order() {
        let order: Vec<_> = provider().cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(
            order[..3],
            [rustls::CipherSuite::TLS13_AES_128_GCM_SHA256, rustls::CipherSuite::TLS13_AES_256_GCM_SHA384, rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256]
        );
    }
}
