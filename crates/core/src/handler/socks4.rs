//! SOCKS4 / SOCKS4a server side, protocol only (go-gost/x `handler/socks/v4`),
//! for GOST's `socks4`, `socks4a` and `auto` handlers.

use crate::auth::Auther;
use crate::codec::socks4::{self as s4, Reply, Request, Socks4Error, MAX_REQUEST_LEN};
use crate::connector::socks4::read_err;
use crate::framed::read_message;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// Reads the request and applies GOST's rules: with users configured the USERID
/// must authenticate with an empty password (else reply 93); only CONNECT is
/// served (GOST leaves BIND unimplemented). The target is `Request::addr()`; the
/// caller then answers with [`reply`] (`GRANTED` or `FAILED`) and bounds the
/// whole call with its read timeout.
pub async fn accept<S>(s: &mut S, auther: Option<&Auther>) -> Result<Request, Socks4Error>
where
    S: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let req = read_message(s, MAX_REQUEST_LEN, Request::decode).await.map_err(read_err("the request"))?;
    if let Some(a) = auther {
        if !a.authenticate(&req.userid, "") {
            reply(s, s4::REJECTED_USERID).await?;
            return Err(Socks4Error::UserRejected(req.userid));
        }
    }
    if req.cmd != s4::CMD_CONNECT {
        reply(s, s4::FAILED).await?;
        return Err(Socks4Error::BindUnsupported);
    }
    Ok(req)
}

/// Writes `00 CODE 0000 00000000`, as GOST does for every reply.
pub async fn reply<S>(s: &mut S, code: u8) -> Result<(), Socks4Error>
where
    S: AsyncWrite + Unpin + ?Sized,
{
    let mut out = Vec::with_capacity(8);
    Reply::new(code).encode(&mut out);
    s.write_all(&out).await?;
    s.flush().await?;
    Ok(())
}
