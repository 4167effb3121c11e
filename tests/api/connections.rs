//! Issue 12, point 1: connections that are idle, slow, or too many cannot take the server down.
//! Before: 0 of 1,000 idle / slow-header / slow-body connections were ever closed, and 1,100
//! idle connections from one client left normal clients unserved.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::*;

/// A TCP connection from `from` (a loopback address other than 127.0.0.1 stands for another
/// client).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// Waits until the server closes `s` (end of stream or reset), up to `limit`; returns what it
/// sent before closing and how long that took, or None if it was still open.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((
                    String::from_utf8_lossy(&out).into_owned(),
                    started.elapsed(),
                ))
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn healthz(app: &TestApp) -> u16 {
    app.http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed_within_the_timeouts() {
    let app = spawn_app_with(|s| {
        s.server.header_read_timeout_secs = 1;
        s.server.body_read_timeout_secs = 1;
    })
    .await;
    let mut idle = connect_from("127.0.0.2", app.addr).await;
    let mut slow_header = connect_from("127.0.0.2", app.addr).await;
    slow_header
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut slow_body = connect_from("127.0.0.2", app.addr).await;
    slow_body
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
              grant_type=",
        )
        .await
        .unwrap();
    // An idle keep-alive connection: one request answered, then nothing.
    let mut kept_alive = connect_from("127.0.0.2", app.addr).await;
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    let limit = Duration::from_secs(5);
    let (said, took) = closed_within(&mut idle, limit).await.expect("idle closed");
    assert!(said.is_empty(), "{said}");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );
    assert!(closed_within(&mut slow_header, limit).await.is_some());
    // RFC 9110 §15.5.9: 408 for a request whose body did not arrive, and the connection closed.
    let (said, _) = closed_within(&mut slow_body, limit)
        .await
        .expect("slow body closed");
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(
        said.to_ascii_lowercase().contains("connection: close"),
        "{said}"
    );
    let (said, _) = closed_within(&mut kept_alive, limit)
        .await
        .expect("idle keep-alive closed");
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
}

/// One address may not hold every slot: past `max_connections_per_ip` its connections are
/// closed at once, and another client is served while it holds the rest.
#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    let app = spawn_app_with(|s| {
        s.server.max_connections = 30;
        s.server.max_connections_per_ip = 10;
        s.server.header_read_timeout_secs = 30;
    })
    .await;
    let mut attacker = Vec::new();
    for _ in 0..25 {
        attacker.push(connect_from("127.0.0.2", app.addr).await);
    }
    let mut refused = 0;
    for s in attacker.iter_mut() {
        if closed_within(s, Duration::from_millis(300)).await.is_some() {
            refused += 1;
        }
    }
    assert_eq!(refused, 15, "all past the tenth are closed at once");
    for _ in 0..5 {
        assert_eq!(healthz(&app).await, 200);
    }
    drop(attacker);
}

/// Past `max_connections` new connections wait to be accepted; as idle ones time out, they
/// are served, instead of never.
#[tokio::test]
async fn idle_connections_at_the_limit_only_delay_others() {
    let app = spawn_app_with(|s| {
        s.server.max_connections = 8;
        s.server.max_connections_per_ip = 0;
        s.server.header_read_timeout_secs = 1;
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect_from("127.0.0.2", app.addr).await);
    }
    let started = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), healthz(&app))
        .await
        .expect("served once the idle connections timed out");
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the request waited for a slot: {:?}",
        started.elapsed()
    );
    for s in idle.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(5)).await.is_some());
    }
}
