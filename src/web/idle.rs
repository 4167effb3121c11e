//! An idle timeout for HTTP/2 connections (issue 12, point 1, for the TLS listener of issue
//! 13). hyper 1's header-read timeout, which bounds idle HTTP/1.1 connections, is HTTP/1 only:
//! an HTTP/2 client that finished its handshake and then sent nothing kept its connection, and
//! a slot of `max_connections`, for ever. `IdleIo` wraps such a connection's stream: once
//! nothing has been read or written for the timeout and no request is in flight, reading
//! reports the end of the stream, and hyper closes the connection as if the client had gone.
//! A request that takes longer than the timeout keeps its connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests in flight on one connection, counted by `web::server`'s service.
#[derive(Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts a request until the returned guard is dropped.
    pub fn start(&self) -> RequestGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.0.clone())
    }

    fn none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

pub struct RequestGuard(Arc<AtomicUsize>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct IdleIo<T> {
    inner: T,
    in_flight: InFlight,
    timeout: Duration,
    /// When bytes last moved; reading the clock is cheaper than moving the timer on every
    /// read and write, so the timer is moved only when it fires early.
    last_active: Instant,
    deadline: Pin<Box<Sleep>>,
    closed: bool,
}

impl<T> IdleIo<T> {
    pub fn new(inner: T, in_flight: InFlight, timeout: Duration) -> Self {
        let now = Instant::now();
        IdleIo {
            inner,
            in_flight,
            timeout,
            last_active: now,
            deadline: Box::pin(tokio::time::sleep_until(now + timeout)),
            closed: false,
        }
    }

    /// Bytes written count as activity.
    fn wrote(&mut self, result: &Poll<io::Result<usize>>) {
        if matches!(result, Poll::Ready(Ok(n)) if *n > 0) {
            self.last_active = Instant::now();
        }
    }

    /// Whether the connection has now been idle for the timeout. Registers the task's waker
    /// with the timer when it has not.
    fn idle(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_active + self.timeout;
            if due <= Instant::now() && self.in_flight.none() {
                return true;
            }
            // Active since the timer was set, or a request is running: look again later.
            let next = if due > Instant::now() {
                due
            } else {
                Instant::now() + self.timeout
            };
            self.deadline.as_mut().reset(next);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last_active = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.idle(cx) => {
                tracing::debug!("closing an idle HTTP/2 connection");
                metrics::counter!("portcullis_http_idle_connections_closed_total").increment(1);
                this.closed = true;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(200);

    #[tokio::test]
    async fn silence_ends_the_stream_unless_a_request_is_in_flight() {
        let (_client, server) = tokio::io::duplex(64);
        let in_flight = InFlight::default();
        let mut io = IdleIo::new(server, in_flight.clone(), TIMEOUT);
        let mut buf = [0u8; 8];
        let request = in_flight.start();
        let read = tokio::time::timeout(TIMEOUT * 3, io.read(&mut buf)).await;
        assert!(read.is_err(), "closed while a request was in flight");
        drop(request);
        let started = Instant::now();
        let n = tokio::time::timeout(TIMEOUT * 3, io.read(&mut buf))
            .await
            .expect("still open, idle with no request")
            .unwrap();
        assert_eq!(n, 0);
        assert!(started.elapsed() <= TIMEOUT * 2);
        // And it stays ended.
        assert_eq!(io.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn bytes_moving_keep_the_stream_open() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut io = IdleIo::new(server, InFlight::default(), TIMEOUT);
        let mut buf = [0u8; 8];
        for _ in 0..6 {
            tokio::time::sleep(TIMEOUT / 2).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(io.read(&mut buf).await.unwrap(), 1);
        }
    }
}
