//! Batched datagram I/O with recvmmsg(2) and sendmmsg(2).
//!
//! Why: a UDP forwarder under load finds many datagrams queued each time it
//! wakes (a DNS client keeps hundreds of queries in flight). Reading and writing
//! them one system call each made the calls most of its CPU; one call per batch
//! leaves more of the machine to the client and the server it sits between.
//! Both calls are non-blocking here: callers run them inside tokio's `try_io`,
//! which clears readiness on `WouldBlock`.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams moved per system call at most.
pub const BATCH: usize = 32;

/// Receive slots for one batch: `BATCH` buffers of `slot` bytes, their lengths
/// and their senders.
pub struct Batch {
    buf: Box<[u8]>,
    slot: usize,
    lens: [usize; BATCH],
    addrs: [libc::sockaddr_storage; BATCH],
    n: usize,
}

impl Batch {
    /// `slot` is the most one datagram may bring; a longer one is cut to it, as
    /// recv(2) with a buffer that size would.
    pub fn new(slot: usize) -> Self {
        let slot = slot.max(1);
        // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
        let addrs = unsafe { zeroed::<[libc::sockaddr_storage; BATCH]>() };
        // vec![0; n] for a large n comes from calloc: pages are touched only when a
        // datagram lands in them.
        Batch { buf: vec![0u8; slot * BATCH].into_boxed_slice(), slot, lens: [0; BATCH], addrs, n: 0 }
    }

    /// Datagrams the last `recv` brought.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Datagram `i` of the last `recv`.
    pub fn datagram(&self, i: usize) -> &[u8] {
        let start = i * self.slot;
        &self.buf[start..start + self.lens[i]]
    }

    /// Sender of datagram `i`; `None` for a family other than IPv4/IPv6.
    pub fn peer(&self, i: usize) -> Option<SocketAddr> {
        from_storage(&self.addrs[i])
    }

    /// Reads up to `BATCH` queued datagrams of at most `limit` bytes each (never
    /// more than the slot) without blocking. `WouldBlock` when none is queued.
    pub fn recv(&mut self, fd: RawFd, limit: usize) -> io::Result<usize> {
        let limit = limit.clamp(1, self.slot);
        // SAFETY: zeroed iovec/mmsghdr are valid (null pointers, zero lengths);
        // every pointer set below points into `self`, which outlives the call.
        let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdr: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let base = self.buf.as_mut_ptr();
        for i in 0..BATCH {
            // SAFETY: i * slot + limit <= BATCH * slot, inside `buf`.
            iov[i].iov_base = unsafe { base.add(i * self.slot) }.cast();
            iov[i].iov_len = limit;
            hdr[i].msg_hdr.msg_iov = &mut iov[i];
            hdr[i].msg_hdr.msg_iovlen = 1;
            hdr[i].msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        self.n = 0;
        // SAFETY: `hdr` holds BATCH initialised headers whose buffers are valid
        // for writes of the lengths given; no timeout pointer.
        let r = unsafe { libc::recvmmsg(fd, hdr.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = r as usize;
        for (len, h) in self.lens.iter_mut().zip(&hdr).take(n) {
            // msg_len is the datagram's length on the wire when it was cut (MSG_TRUNC).
            *len = (h.msg_len as usize).min(limit);
        }
        self.n = n;
        Ok(n)
    }
}

/// Up to `BATCH` datagrams gathered for [`send_many`], without allocating; derefs
/// to the slice list. Datagrams past `BATCH` are left out.
pub struct Refs<'a> {
    list: [&'a [u8]; BATCH],
    n: usize,
}

impl<'a> Refs<'a> {
    pub fn new(datagrams: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut list: [&'a [u8]; BATCH] = [&[]; BATCH];
        let mut n = 0;
        for (slot, d) in list.iter_mut().zip(datagrams) {
            *slot = d;
            n += 1;
        }
        Refs { list, n }
    }
}

impl<'a> std::ops::Deref for Refs<'a> {
    type Target = [&'a [u8]];
    fn deref(&self) -> &Self::Target {
        &self.list[..self.n]
    }
}

/// The bytes in `datagrams`, for the meters.
pub fn bytes(datagrams: &[&[u8]]) -> u64 {
    datagrams.iter().map(|d| d.len() as u64).sum()
}

/// Sends up to `BATCH` of `datagrams`, in order, with one sendmmsg(2), to `to`, or
/// to the peer the socket is connected to when `to` is `None`. Returns how many
/// left; fewer than offered when the socket buffer filled up. `WouldBlock` when
/// none could go.
pub fn send_many(fd: RawFd, to: Option<SocketAddr>, datagrams: &[&[u8]]) -> io::Result<usize> {
    let datagrams = &datagrams[..datagrams.len().min(BATCH)];
    let (mut name, namelen) = match to {
        Some(a) => to_storage(a),
        // SAFETY: all-zero sockaddr_storage is valid; it is not passed (namelen 0).
        None => (unsafe { zeroed() }, 0),
    };
    // SAFETY: as in `Batch::recv`; the buffers are only read by the kernel.
    let mut iov: [libc::iovec; BATCH] = unsafe { zeroed() };
    let mut hdr: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
    for (i, d) in datagrams.iter().enumerate() {
        iov[i].iov_base = d.as_ptr() as *mut libc::c_void;
        iov[i].iov_len = d.len();
        hdr[i].msg_hdr.msg_iov = &mut iov[i];
        hdr[i].msg_hdr.msg_iovlen = 1;
        if namelen > 0 {
            hdr[i].msg_hdr.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
            hdr[i].msg_hdr.msg_namelen = namelen;
        }
    }
    // SAFETY: `datagrams.len()` initialised headers pointing at live buffers.
    let r = unsafe { libc::sendmmsg(fd, hdr.as_mut_ptr(), datagrams.len() as libc::c_uint, libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // sockaddr_storage is large and aligned enough for it.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)), u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(a.sin6_addr.s6_addr), u16::from_be(a.sin6_port), a.sin6_flowinfo, a.sin6_scope_id)))
        }
        _ => None,
    }
}

fn to_storage(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all zeroes is a valid sockaddr_storage.
    let mut s: libc::sockaddr_storage = unsafe { zeroed() };
    match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let p = unsafe { &mut *(&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            p.sin_family = libc::AF_INET as libc::sa_family_t;
            p.sin_port = v4.port().to_be();
            p.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
            (s, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let p = unsafe { &mut *(&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            p.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            p.sin6_port = v6.port().to_be();
            p.sin6_flowinfo = v6.flowinfo();
            p.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            p.sin6_scope_id = v6.scope_id();
            (s, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn pair(addr: &str) -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind(addr).unwrap();
        let b = UdpSocket::bind(addr).unwrap();
        (a, b)
    }

    #[test]
    fn a_batch_brings_every_queued_datagram_with_its_sender_and_cuts_long_ones() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let (rx, tx) = pair(host);
            let to = rx.local_addr().unwrap();
            for i in 0..5u8 {
                tx.send_to(&vec![i; 10 + i as usize], to).unwrap();
            }
            let mut b = Batch::new(12);
            let n = b.recv(rx.as_raw_fd(), 64).unwrap();
            assert_eq!(n, 5);
            for i in 0..5 {
                // 10, 11, 12, then 13 and 14 cut to the 12-byte slot.
                assert_eq!(b.datagram(i), &vec![i as u8; (10 + i).min(12)][..]);
                assert_eq!(b.peer(i), Some(tx.local_addr().unwrap()));
            }
            let e = b.recv(rx.as_raw_fd(), 64).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
    }

    #[test]
    fn more_than_a_batch_is_read_in_turns() {
        let (rx, tx) = pair("127.0.0.1:0");
        let to = rx.local_addr().unwrap();
        for i in 0..(BATCH + 3) {
            tx.send_to(&(i as u32).to_be_bytes(), to).unwrap();
        }
        let mut b = Batch::new(4);
        let mut seen = Vec::new();
        for _ in 0..3 {
            match b.recv(rx.as_raw_fd(), 4) {
                Ok(n) => seen.extend((0..n).map(|i| u32::from_be_bytes(b.datagram(i).try_into().unwrap()))),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        assert_eq!(seen, (0..(BATCH + 3) as u32).collect::<Vec<_>>());
    }

    #[test]
    fn refs_keep_order_and_stop_at_a_batch() {
        let data: Vec<Vec<u8>> = (0..(BATCH + 5) as u8).map(|i| vec![i; 2]).collect();
        let refs = Refs::new(data.iter().map(|d| &d[..]));
        assert_eq!(refs.len(), BATCH);
        assert!(refs.iter().enumerate().all(|(i, d)| *d == [i as u8; 2]));
        assert_eq!(bytes(&refs), 2 * BATCH as u64);
    }

    #[test]
    fn send_many_reaches_an_address_or_the_connected_peer_in_order() {
        let (rx, tx) = pair("127.0.0.1:0");
        let to = rx.local_addr().unwrap();
        let data: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; i as usize + 1]).collect();
        let refs: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
        assert_eq!(send_many(tx.as_raw_fd(), Some(to), &refs[..20]).unwrap(), 20);
        tx.connect(to).unwrap();
        assert_eq!(send_many(tx.as_raw_fd(), None, &refs[20..]).unwrap(), 20);
        let mut buf = [0u8; 64];
        for d in &data {
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &d[..]);
            assert_eq!(from, tx.local_addr().unwrap());
        }
    }
}
