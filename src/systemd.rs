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

/// The URL of our own `/healthz` for a listen address (a wildcard address is asked on loopback).
pub fn self_check_url(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!(
        "http://{}/healthz",
        std::net::SocketAddr::new(ip, addr.port())
    )
}

/// Whether `url` answers 200 within `timeout`: a server that accepts connections but never answers, or
/// answers 503, does not count.
pub fn answers(url: &str, timeout: Duration) -> bool {
    let agent = ureq::AgentBuilder::new().timeout(timeout).build();
    matches!(agent.get(url).call(), Ok(resp) if resp.status() == 200)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A server on loopback that answers each connection with `reply`, or holds it open unanswered.
    fn server(reply: Option<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                match reply {
                    Some(r) => {
                        let _ = stream.write_all(r.as_bytes());
                    }
                    // Wedged: the connection is accepted and never answered.
                    None => std::thread::sleep(Duration::from_secs(30)),
                }
            }
        });
        url
    }

    #[test]
    fn only_a_timely_200_counts_as_healthy() {
        let timeout = Duration::from_millis(300);
        let cases = [
            (Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), true),
            (
                Some("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"),
                false,
            ),
            (None, false),
        ];
        for (reply, want) in cases {
            let url = server(reply);
            let started = std::time::Instant::now();
            assert_eq!(answers(&url, timeout), want, "{reply:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        // Nothing listening at all.
        assert!(!answers("http://127.0.0.1:1/healthz", timeout));
    }

    #[test]
    fn wildcard_listeners_are_checked_on_loopback() {
        let cases = [
            ("0.0.0.0:8080", "http://127.0.0.1:8080/healthz"),
            ("[::]:8080", "http://[::1]:8080/healthz"),
            ("192.0.2.7:80", "http://192.0.2.7:80/healthz"),
        ];
        for (addr, want) in cases {
            assert_eq!(self_check_url(addr.parse().unwrap()), want);
        }
    }
}
