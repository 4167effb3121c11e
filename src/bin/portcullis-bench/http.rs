//! A minimal HTTP/1.1 keep-alive client: one connection per worker, requests written as
//! prepared bytes, responses read by Content-Length. Lean on purpose: the load generator runs
//! on the same two cores as the server, so every microsecond it spends is one the server loses.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    addr: std::net::SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
}

pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: std::net::SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            addr,
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends one request and reads its response; reconnects once if the server closed an idle
    /// connection.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        match self.round_trip(request).await {
            Ok(r) => Ok(r),
            Err(_) => {
                *self = Conn::connect(self.addr).await?;
                self.round_trip(request).await
            }
        }
    }

    async fn round_trip(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let header_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            self.read_more().await?;
        };
        let head =
            std::str::from_utf8(&self.buf[..header_end]).map_err(|_| bad("non-UTF-8 headers"))?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut length = 0usize;
        let mut location = None;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().map_err(|_| bad("bad content-length"))?;
                } else if name.eq_ignore_ascii_case("location") {
                    location = Some(value.to_string());
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(bad("chunked responses are not expected"));
                }
            }
        }
        while self.buf.len() < header_end + length {
            self.read_more().await?;
        }
        let body = self.buf[header_end..header_end + length].to_vec();
        Ok(Response {
            status,
            location,
            body,
        })
    }

    async fn read_more(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bad(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.to_string())
}

pub fn get(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\n{extra_headers}\r\n").into_bytes()
}

pub fn post_form(path: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
    .into_bytes()
}
