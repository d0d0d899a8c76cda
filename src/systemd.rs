//! sd_notify over `NOTIFY_SOCKET` (READY, STOPPING, WATCHDOG) with std's Unix datagram socket; does nothing
//! when not started by systemd.

use std::time::Duration;

/// Sends one notification, such as `READY=1`; ignored outside systemd.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        abstract_send(&sock, name, state)
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

#[cfg(target_os = "linux")]
fn abstract_send(
    sock: &std::os::unix::net::UnixDatagram,
    name: &[u8],
    state: &str,
) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(state.as_bytes(), &addr)
}

#[cfg(not(target_os = "linux"))]
fn abstract_send(
    _: &std::os::unix::net::UnixDatagram,
    _: &[u8],
    _: &str,
) -> std::io::Result<usize> {
    Ok(0)
}

/// Half the watchdog period systemd asked for (`WATCHDOG_USEC`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    Some(Duration::from_micros(usec / 2))
}
