//! The stream of one client connection, as Pingora reads and writes it: the transport with
//! two duties added that Pingora does not have.
//!
//! - **The request head has a total deadline and a size.** Pingora times the silence
//!   between reads, so a client sending one header line every few seconds held a connection
//!   for as long as it liked. Here the whole head (request line and headers) must arrive
//!   within `GATEWAY_HEADER_TIMEOUT_MS` of its first byte (of the connection's opening, for
//!   the first request), in at most `GATEWAY_MAX_HEADER_BYTES` and `GATEWAY_MAX_HEADERS`
//!   lines. Otherwise the read fails, Pingora gives the connection up and shuts it down, and
//!   the shutdown writes `408` or `431` with a JSON body first (for at most
//!   [`REFUSAL_WRITE`]). Pingora's own limits (1 MiB, 256 headers) are never reached; a head
//!   that is not HTTP at all still gets Pingora's empty 400.
//! - **A connection is closed the way NGINX closes it ("lingering close").** When the gateway
//!   answers before it has read the whole request — a 413 for a body too large, a 401 for a
//!   POST without a token — closing the socket with unread data in it makes the kernel reset
//!   the connection, and a client that sends its whole body before reading (Python's urllib,
//!   many HTTP libraries) gets "Broken pipe" or "Connection reset" instead of the answer.
//!   So when the stream is dropped, our side is shut down (FIN), and what the client still
//!   sends is read and thrown away until it closes too, for at most [`LINGER_TOTAL`] (and
//!   [`LINGER_IDLE`] of silence). Only then is the socket closed.
//!
//! The head's phase is shared ([`HeadPhase`]) between this stream, which Pingora owns while
//! it handles a request, and the connection loop and the proxy, which say when a new request
//! may begin and when Pingora has parsed the head.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::error::{body, raw_response};

/// The longest a closing connection is drained.
pub const LINGER_TOTAL: Duration = Duration::from_secs(10);
/// The longest silence while draining a closing connection.
pub const LINGER_IDLE: Duration = Duration::from_secs(2);
/// The longest wait to write a refusal (408, 431, 429) to a client.
pub const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// The limits on a request head.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    /// The whole head must arrive within this time of its first byte.
    pub timeout: Duration,
    /// The most bytes in a head.
    pub max_bytes: usize,
    /// The most header lines in a head (the request line not counted).
    pub max_headers: usize,
}

/// Where a connection is in its current request.
#[derive(Debug)]
pub struct HeadPhase(AtomicU8);

/// Between requests: nothing of the next one has arrived (idle keep-alive is Pingora's).
const AWAITING: u8 = 0;
/// The head is arriving: the deadline and the limits apply.
const READING: u8 = 1;
/// The head has arrived: the rest of the request is Pingora's.
const PARSED: u8 = 2;

impl HeadPhase {
    /// A new connection: its first head is due from now on.
    pub fn first_request() -> Self {
        Self(AtomicU8::new(READING))
    }

    /// The previous request is finished; the next head is due from its first byte.
    pub fn next_request(&self) {
        self.0.store(AWAITING, Ordering::Release);
    }

    /// Pingora has parsed the head (the stream usually notices itself; this covers a head
    /// Pingora had already buffered).
    pub fn head_parsed(&self) {
        self.0.store(PARSED, Ordering::Release);
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, phase: u8) {
        self.0.store(phase, Ordering::Release);
    }
}

/// Why the gateway refused a request head; answered when Pingora shuts the stream down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// 408: the head did not arrive in time.
    Timeout,
    /// 431: the head is too large or has too many headers.
    TooLarge,
}

impl Refusal {
    /// The error every read fails with once the head is refused.
    fn error(self) -> io::Error {
        let kind = match self {
            Refusal::Timeout => io::ErrorKind::TimedOut,
            Refusal::TooLarge => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, "request head refused")
    }

    fn response(self) -> Vec<u8> {
        match self {
            Refusal::Timeout => raw_response(408, "Request Timeout", body::CLIENT_TIMEOUT),
            Refusal::TooLarge => raw_response(
                431,
                "Request Header Fields Too Large",
                body::HEADERS_TOO_LARGE,
            ),
        }
    }
}

/// A refusal being written: the bytes, how many went out, and when to give up.
struct Unsent {
    bytes: Vec<u8>,
    written: usize,
    give_up: Pin<Box<Sleep>>,
}

/// What the head scanner found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
enum Scanned {
    /// The head goes on.
    More,
    /// The blank line that ends the head.
    Complete,
    /// Over a limit, at this byte of the data given.
    TooLarge { at: usize },
}

/// Counts the bytes and lines of a head as it arrives, and finds its end.
#[derive(Debug, Default)]
struct HeadScan {
    bytes: usize,
    lines: usize,
    /// Bytes of the current line, line breaks not counted.
    line_len: usize,
}

impl HeadScan {
    fn feed(&mut self, data: &[u8], limits: &HeadLimits) -> Scanned {
        for (at, &b) in data.iter().enumerate() {
            self.bytes += 1;
            if self.bytes > limits.max_bytes {
                return Scanned::TooLarge { at };
            }
            match b {
                b'\n' if self.line_len == 0 => {
                    // Blank lines before the request line are ignored (RFC 9112 §2.2);
                    // after it, a blank line ends the head. httparse accepts bare LF too.
                    if self.lines > 0 {
                        return Scanned::Complete;
                    }
                }
                b'\n' => {
                    self.lines += 1;
                    self.line_len = 0;
                    if self.lines > limits.max_headers + 1 {
                        return Scanned::TooLarge { at };
                    }
                }
                b'\r' => {}
                _ => self.line_len += 1,
            }
        }
        Scanned::More
    }
}

/// A client connection's transport with the head limits and the lingering close.
pub struct ClientStream {
    /// `None` only once dropped (taken by the lingering close).
    inner: Option<Stream>,
    phase: Arc<HeadPhase>,
    limits: HeadLimits,
    deadline: Option<Pin<Box<Sleep>>>,
    scan: HeadScan,
    /// Set once the head is refused: every read fails from then on.
    refused: Option<Refusal>,
    /// The answer to a refused head, written when Pingora shuts the stream down.
    unsent: Option<Unsent>,
    /// The client closed its side: nothing is left to drain.
    client_closed: bool,
    /// Released when the connection is finally closed (after lingering): the client
    /// address's connection slot.
    held: Option<Box<dyn Send + Sync>>,
}

impl ClientStream {
    /// Wraps a freshly accepted connection whose first head is due within `limits.timeout`;
    /// `held` is released when the connection is closed.
    pub fn new(
        inner: Stream,
        phase: Arc<HeadPhase>,
        limits: HeadLimits,
        held: Option<Box<dyn Send + Sync>>,
    ) -> Self {
        let deadline = (phase.get() == READING)
            .then(|| Box::pin(tokio::time::sleep_until(Instant::now() + limits.timeout)));
        Self {
            inner: Some(inner),
            phase,
            limits,
            deadline,
            scan: HeadScan::default(),
            refused: None,
            unsent: None,
            client_closed: false,
            held,
        }
    }

    fn inner(&mut self) -> io::Result<&mut Stream> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    /// Refuses the head: the answer is written at shutdown, every read fails from now on.
    fn refuse(&mut self, refusal: Refusal) {
        self.refused = Some(refusal);
        self.unsent = Some(Unsent {
            bytes: refusal.response(),
            written: 0,
            give_up: Box::pin(tokio::time::sleep(REFUSAL_WRITE)),
        });
        self.deadline = None;
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(refusal) = this.refused {
            return Poll::Ready(Err(refusal.error()));
        }
        let phase = this.phase.get();
        if phase == READING {
            if let Some(deadline) = this.deadline.as_mut() {
                // Polled before the read, so that a silent client is woken up at the deadline.
                if deadline.as_mut().poll(cx).is_ready() {
                    this.refuse(Refusal::Timeout);
                    return Poll::Ready(Err(Refusal::Timeout.error()));
                }
            }
        }
        let before = buf.filled().len();
        ready!(Pin::new(this.inner()?).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        if new.is_empty() {
            this.client_closed = true;
            return Poll::Ready(Ok(()));
        }
        if phase == PARSED {
            return Poll::Ready(Ok(()));
        }
        if phase == AWAITING {
            // The first bytes of the next request: its head is due from now.
            this.phase.set(READING);
            this.scan = HeadScan::default();
            this.deadline = Some(Box::pin(tokio::time::sleep(this.limits.timeout)));
        }
        match this.scan.feed(new, &this.limits) {
            Scanned::More => Poll::Ready(Ok(())),
            Scanned::Complete => {
                this.phase.set(PARSED);
                this.deadline = None;
                Poll::Ready(Ok(()))
            }
            Scanned::TooLarge { at } => {
                this.refuse(Refusal::TooLarge);
                if at == 0 {
                    return Poll::Ready(Err(Refusal::TooLarge.error()));
                }
                // The bytes before the offending one are an unfinished head, harmless to
                // Pingora; the next read fails. (Failing the very first read would look to
                // Pingora like a client that sent nothing, and it would close without a word.)
                buf.set_filled(before + at);
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.inner()?).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.inner()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.inner()?).poll_flush(cx)
    }

    /// Writes the answer to a refused head first, if there is one (Pingora shuts a stream
    /// down when it gives a connection up).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let inner = this
            .inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        while let Some(unsent) = this.unsent.as_mut() {
            if unsent.written == unsent.bytes.len() || unsent.give_up.as_mut().poll(cx).is_ready() {
                this.unsent = None;
                break;
            }
            match Pin::new(&mut *inner).poll_write(cx, &unsent.bytes[unsent.written..]) {
                Poll::Ready(Ok(n)) if n > 0 => unsent.written += n,
                // The client is gone: nobody to tell.
                Poll::Ready(_) => this.unsent = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        Pin::new(inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for ClientStream {
    async fn shutdown(&mut self) {
        // The client may be gone already: nothing to report then.
        let _ = AsyncWriteExt::shutdown(self).await;
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        let (Some(stream), held) = (self.inner.take(), self.held.take()) else {
            return;
        };
        if self.client_closed {
            return; // nothing more will come: closing now resets nothing
        }
        // Without a runtime (never, in the gateway) the socket is simply closed.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, held, LINGER_TOTAL));
        }
    }
}

/// Writes a whole refusal to a client, giving up after [`REFUSAL_WRITE`].
pub async fn write_refusal(stream: &mut Stream, response: &[u8]) {
    let write = async {
        stream.write_all(response).await?;
        stream.flush().await
    };
    if let Ok(Err(e)) = tokio::time::timeout(REFUSAL_WRITE, write).await {
        tracing::debug!(error = %e, "could not write a refusal to the client");
    }
}

/// The lingering close: our side is shut down (FIN), then whatever the client still sends is
/// read and discarded until it closes, for at most `total` and [`LINGER_IDLE`] of silence;
/// then the socket is closed and `held` released.
pub async fn linger(mut stream: Stream, held: Option<Box<dyn Send + Sync>>, total: Duration) {
    let until = Instant::now() + total;
    // A failure here (the client is gone, or the side was shut already) shows in the reads.
    let _ = tokio::time::timeout(LINGER_IDLE, AsyncWriteExt::shutdown(&mut stream)).await;
    let mut discard = vec![0u8; 16 * 1024];
    loop {
        let wait = until.min(Instant::now() + LINGER_IDLE);
        match tokio::time::timeout_at(wait, stream.read(&mut discard)).await {
            Ok(Ok(n)) if n > 0 => continue,
            _ => break,
        }
    }
    drop(held);
}

impl UniqueID for ClientStream {
    fn id(&self) -> UniqueIDType {
        self.inner.as_ref().map_or(-1, |s| s.id())
    }
}

impl Ssl for ClientStream {}

impl GetTimingDigest for ClientStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner
            .as_ref()
            .map_or_else(Vec::new, |s| s.get_timing_digest())
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner
            .as_ref()
            .map_or(Duration::ZERO, |s| s.get_read_pending_time())
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner
            .as_ref()
            .map_or(Duration::ZERO, |s| s.get_write_pending_time())
    }
}

impl GetProxyDigest for ClientStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.as_ref().and_then(|s| s.get_proxy_digest())
    }
}

impl GetSocketDigest for ClientStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.as_ref().and_then(|s| s.get_socket_digest())
    }
}

#[async_trait]
impl Peek for ClientStream {}

impl fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientStream")
            .field("inner", &self.inner)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        timeout: Duration::from_secs(1),
        max_bytes: 200,
        max_headers: 3,
    };

    fn scan(chunks: &[&[u8]]) -> Scanned {
        let mut scan = HeadScan::default();
        for chunk in chunks {
            match scan.feed(chunk, &LIMITS) {
                Scanned::More => {}
                done => return done,
            }
        }
        Scanned::More
    }

    #[test]
    fn finds_the_end_of_a_head_across_reads() {
        assert_eq!(
            scan(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]),
            Scanned::Complete
        );
        assert_eq!(
            scan(&[b"GET / HTTP/1.1\r\nHo", b"st: x\r", b"\n\r", b"\nbody"]),
            Scanned::Complete
        );
        assert_eq!(scan(&[b"GET / HTTP/1.1\nHost: x\n\n"]), Scanned::Complete);
        // Blank lines before the request line do not end anything.
        assert_eq!(scan(&[b"\r\n\r\nGET / HTTP/1.1\r\n"]), Scanned::More);
        assert_eq!(scan(&[b"GET / HTTP/1.1\r\nHost: x\r\n"]), Scanned::More);
    }

    #[test]
    fn refuses_heads_over_the_limits() {
        // Three headers are fine, a fourth is one too many.
        let three = b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
        assert_eq!(scan(&[three]), Scanned::Complete);
        let four = b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\n\r\n";
        // The offending byte: the line feed that ends the fourth header.
        assert_eq!(scan(&[four]), Scanned::TooLarge { at: 39 });
        let long = [b'x'; 300];
        let head = b"GET / HTTP/1.1\r\nh: ";
        assert_eq!(
            scan(&[head, &long]),
            Scanned::TooLarge {
                at: 200 - head.len()
            }
        );
        // What follows the head (a body) is not counted.
        assert_eq!(
            scan(&[b"POST / HTTP/1.1\r\na: 1\r\n\r\n", &long]),
            Scanned::Complete
        );
    }
}
