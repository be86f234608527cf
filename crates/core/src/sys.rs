//! Process-level setup shared by the CLI and the app.

/// Raises the soft open-files limit to the hard limit, as busy forwarders need one
/// descriptor per client and one per target. Returns (old soft, new soft).
// `rlim_t` is not u64 on every platform.
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let old = rl.rlim_cur as u64;
    if rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((old, rl.rlim_cur as u64))
}
