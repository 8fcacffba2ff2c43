//! The server loop: one OS thread per connection, as Hive's own metastore does.
//!
//! [`serve`] owns accepting connections (at most
//! [`ServerOptions::max_connections`] at once), the thread of each connection,
//! and the life of a connection: the encoding is detected from the first bytes
//! (see [`crate::wire`]), then the caller's factory makes the processor for that
//! connection (so per-connection state such as `set_ugi` lives in it), then each
//! complete request is dispatched to it and its reply written back in the
//! client's transport and protocol.
//!
//! Every call runs inside `catch_unwind`: a panicking handler gets the client a
//! TApplicationException (INTERNAL_ERROR) and closes only that connection.
//! Bad input closes only that connection too, logged at debug (peer gone) or
//! info (garbage, truncated, too large, timeouts) with the peer address.
//!
//! Shutdown is graceful: after [`Shutdown::trigger`] no connection is
//! accepted, calls in progress finish and have their replies written, idle
//! connections close within [`POLL_INTERVAL`], and `serve` returns once every
//! connection thread has ended.
//!
//! Tracing: a span `hms_connection` (id, peer, transport, protocol) per
//! connection and a span `hms_call` (method, seq) per call.

use std::any::Any;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use thrift::protocol::{TMessageIdentifier, TMessageType};
use thrift::server::TProcessor;
use thrift::{ApplicationError, ApplicationErrorKind};
use tracing::{debug, error, info, info_span, warn};

use crate::wire::{
    BufferInputProtocol, Limits, MessageReader, Protocol, ReplyBuffer, Transport, WaitPolicy,
    WireError,
};

/// How often an idle connection thread (and a blocked accept, on shutdown)
/// looks at the shutdown flag and its timeouts.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Limits and timeouts of a server. `Default` gives Hive-like settings.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Connections served at once; one more is closed as soon as it is
    /// accepted (logged at warn). Hive's default is 1000 worker threads.
    pub max_connections: usize,
    /// Largest request message, in bytes (frame header excluded). Larger
    /// requests close the connection before their body is read.
    pub max_message_bytes: usize,
    /// Deepest nesting of structs and containers in a request (the argument
    /// struct of a call is depth 1).
    pub max_nesting_depth: usize,
    /// A connection with no request for this long is closed. `None` (the
    /// default, as in Hive) keeps idle connections open.
    pub idle_timeout: Option<Duration>,
    /// A request whose bytes stop arriving for this long is dropped and its
    /// connection closed.
    pub stall_timeout: Duration,
    /// A reply that cannot be written for this long closes the connection.
    pub write_timeout: Duration,
    /// Calls taking at least this long are logged at info (others at debug).
    pub slow_call: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let limits = Limits::default();
        ServerOptions {
            max_connections: 1000,
            max_message_bytes: limits.max_message_bytes,
            max_nesting_depth: limits.max_depth,
            idle_timeout: None,
            stall_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(120),
            slow_call: Duration::from_secs(10),
        }
    }
}

/// What the processor factory knows about a new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Number of the connection within this `serve` call, from 1.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The transport the client uses (detected from its first bytes).
    pub transport: Transport,
    /// The protocol the client uses (detected from its first bytes).
    pub protocol: Protocol,
}

/// A cancellation handle for [`serve`]: cloneable, trigger once from anywhere.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<ShutdownInner>,
}

#[derive(Debug, Default)]
struct ShutdownInner {
    triggered: AtomicBool,
    /// Addresses of listeners blocked in `accept`, to wake them.
    listeners: Mutex<Vec<SocketAddr>>,
}

impl Shutdown {
    /// A handle that has not been triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops every `serve` using this handle: no new connections, calls in
    /// progress finish, then `serve` returns.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        let listeners = self.inner.listeners.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for addr in listeners {
            // Wake the blocked accept; it sees the flag and stops.
            let _ = TcpStream::connect_timeout(&reachable(addr), Duration::from_secs(1));
        }
    }

    /// Whether [`Shutdown::trigger`] was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    fn register(&self, addr: SocketAddr) {
        self.inner.listeners.lock().unwrap_or_else(|p| p.into_inner()).push(addr);
    }

    fn unregister(&self, addr: SocketAddr) {
        let mut listeners = self.inner.listeners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = listeners.iter().position(|a| *a == addr) {
            listeners.swap_remove(i);
        }
    }
}

/// A listener bound to the unspecified address is reached through loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), addr.port())
        }
        _ => addr,
    }
}

/// Serves Thrift connections accepted on `listener` until `shutdown` is
/// triggered, then returns once every connection has ended.
///
/// `factory` is called on the connection's own thread once its transport and
/// protocol are known, and returns the processor that serves every call of
/// that connection, e.g.
/// `|_| ThriftHiveMetastoreSyncProcessor::new(MyHandler::new(store.clone()))`.
/// Neither the processor nor the handler needs to be `Send`.
///
/// Errors only if the listener's address cannot be read; everything that goes
/// wrong with a connection is logged and closes that connection alone.
pub fn serve<F, P>(
    listener: TcpListener,
    factory: F,
    options: ServerOptions,
    shutdown: Shutdown,
) -> io::Result<()>
where
    F: Fn(ConnectionInfo) -> P + Sync,
    P: TProcessor,
{
    let local = listener.local_addr()?;
    shutdown.register(local);
    info!(address = %local, "hive metastore thrift server listening");
    let active = AtomicUsize::new(0);
    let factory = &factory;
    let options = &options;
    let shutdown_ref = &shutdown;
    let active_ref = &active;
    thread::scope(|scope| {
        let mut next_id: u64 = 0;
        while !shutdown_ref.is_triggered() {
            let (stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) => {
                    match e.kind() {
                        io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset => {}
                        _ => {
                            // E.g. out of file descriptors: back off, keep serving.
                            warn!(error = %e, "accept failed");
                            thread::sleep(POLL_INTERVAL);
                        }
                    }
                    continue;
                }
            };
            if shutdown_ref.is_triggered() {
                break;
            }
            next_id += 1;
            let id = next_id;
            if active_ref.load(Ordering::SeqCst) >= options.max_connections {
                warn!(%peer, max_connections = options.max_connections,
                    "refusing connection: too many connections");
                continue;
            }
            active_ref.fetch_add(1, Ordering::SeqCst);
            let slot = Slot(active_ref);
            let spawned = thread::Builder::new()
                .name(format!("hms-conn-{id}"))
                .spawn_scoped(scope, move || {
                    let _slot = slot;
                    connection(stream, peer, id, factory, options, shutdown_ref);
                });
            if let Err(e) = spawned {
                warn!(%peer, error = %e, "cannot start a thread for the connection");
            }
        }
        info!(address = %local, "hive metastore thrift server stopping");
    });
    shutdown.unregister(local);
    info!(address = %local, "hive metastore thrift server stopped");
    Ok(())
}

/// One connection's place in the count; freed when its thread ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a connection ended.
enum Close {
    Wire(WireError),
    Write(io::Error),
    Setup(io::Error),
    Panicked { method: Option<String>, message: String },
    Encode(thrift::Error),
    ShuttingDown,
}

fn connection<F, P>(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    factory: &F,
    options: &ServerOptions,
    shutdown: &Shutdown,
) where
    F: Fn(ConnectionInfo) -> P,
    P: TProcessor,
{
    let span = info_span!(
        "hms_connection",
        id,
        %peer,
        transport = tracing::field::Empty,
        protocol = tracing::field::Empty
    );
    let _entered = span.enter();
    debug!("connection accepted");
    let outcome = run(&stream, &span, peer, id, factory, options, shutdown);
    match outcome {
        Close::Wire(WireError::Closed) => debug!("connection closed by the peer"),
        Close::Wire(WireError::Io(e)) => debug!(error = %e, "connection lost"),
        Close::Wire(e) => info!(reason = %e, "closing connection: unreadable request"),
        Close::Write(e) => debug!(error = %e, "connection lost while writing a reply"),
        Close::Setup(e) => info!(error = %e, "closing connection: socket setup failed"),
        Close::Panicked { method, message } => error!(
            method = method.as_deref().unwrap_or("-"),
            panic = %message,
            "closing connection: handler panicked"
        ),
        Close::Encode(e) => error!(error = %e, "closing connection: reply could not be encoded"),
        Close::ShuttingDown => debug!("connection closed: server shutting down"),
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Waits on an idle socket: gives up on shutdown and on the timeouts.
struct ConnectionWait<'a> {
    shutdown: &'a Shutdown,
    idle_timeout: Option<Duration>,
    stall_timeout: Duration,
    since: Instant,
}

impl WaitPolicy for ConnectionWait<'_> {
    fn on_idle(&mut self, mid_message: bool) -> Result<(), WireError> {
        if self.shutdown.is_triggered() {
            return Err(WireError::GaveUp("server shutting down"));
        }
        let waited = self.since.elapsed();
        if mid_message {
            if waited >= self.stall_timeout {
                return Err(WireError::GaveUp("request stalled: no bytes within stall_timeout"));
            }
        } else if self.idle_timeout.is_some_and(|idle| waited >= idle) {
            return Err(WireError::GaveUp("idle for longer than idle_timeout"));
        }
        Ok(())
    }

    fn on_progress(&mut self) {
        self.since = Instant::now();
    }
}

fn run<F, P>(
    stream: &TcpStream,
    span: &tracing::Span,
    peer: SocketAddr,
    id: u64,
    factory: &F,
    options: &ServerOptions,
    shutdown: &Shutdown,
) -> Close
where
    F: Fn(ConnectionInfo) -> P,
    P: TProcessor,
{
    let setup = (|| {
        stream.set_read_timeout(Some(POLL_INTERVAL))?;
        stream.set_write_timeout(Some(options.write_timeout))?;
        stream.set_nodelay(true)?;
        stream.try_clone()
    })();
    let read_half = match setup {
        Ok(s) => s,
        Err(e) => return Close::Setup(e),
    };
    let limits = Limits {
        max_message_bytes: options.max_message_bytes,
        max_depth: options.max_nesting_depth,
    };
    let wait = ConnectionWait {
        shutdown,
        idle_timeout: options.idle_timeout,
        stall_timeout: options.stall_timeout,
        since: Instant::now(),
    };
    let mut reader = MessageReader::new(read_half, wait, limits);
    let encoding = match reader.detect() {
        Ok(e) => e,
        Err(WireError::GaveUp(_)) if shutdown.is_triggered() => return Close::ShuttingDown,
        Err(e) => return Close::Wire(e),
    };
    span.record("transport", tracing::field::display(encoding.transport));
    span.record("protocol", tracing::field::display(encoding.protocol));
    debug!("encoding detected");
    let info = ConnectionInfo {
        id,
        peer,
        transport: encoding.transport,
        protocol: encoding.protocol,
    };
    let processor = match catch_unwind(AssertUnwindSafe(|| factory(info))) {
        Ok(p) => p,
        Err(panic) => {
            return Close::Panicked { method: None, message: panic_message(&*panic) };
        }
    };
    let mut reply = ReplyBuffer::new(encoding);
    loop {
        if shutdown.is_triggered() {
            return Close::ShuttingDown;
        }
        let message = match reader.next_message() {
            Ok(m) => m,
            Err(WireError::GaveUp(_)) if shutdown.is_triggered() => return Close::ShuttingDown,
            Err(e) => return Close::Wire(e),
        };
        let header = &message.header;
        let call_span = info_span!("hms_call", method = %header.name, seq = header.sequence);
        let _call = call_span.enter();
        let started = Instant::now();
        reply.clear();
        let outcome = {
            let mut input = BufferInputProtocol::new(&message.bytes, encoding.protocol);
            let mut output = reply.protocol();
            catch_unwind(AssertUnwindSafe(|| processor.process(&mut input, &mut *output)))
        };
        let elapsed = started.elapsed();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Close::Encode(e),
            Err(panic) => {
                let message = panic_message(&*panic);
                if !header.is_oneway() {
                    // Tell the client before closing; best effort.
                    reply.clear();
                    let internal = ApplicationError::new(
                        ApplicationErrorKind::InternalError,
                        format!("internal error in {}", header.name),
                    );
                    let written = {
                        let mut output = reply.protocol();
                        write_exception(&mut *output, header, &internal)
                    };
                    if written.is_ok() {
                        let mut w = stream;
                        let _ = w.write_all(reply.finish());
                    }
                }
                return Close::Panicked { method: Some(header.name.clone()), message };
            }
        }
        if elapsed >= options.slow_call {
            info!(elapsed_ms = elapsed.as_millis() as u64, "slow call");
        } else {
            debug!(elapsed_us = elapsed.as_micros() as u64, "call done");
        }
        if header.is_oneway() {
            // A oneway call never gets a reply, not even an exception (e.g.
            // fb303 `shutdown` left unimplemented): the client would read it
            // as the reply to its next call.
            if !reply.is_empty() {
                debug!("reply to a oneway call dropped");
            }
        } else if !reply.is_empty() {
            let mut w = stream;
            if let Err(e) = w.write_all(reply.finish()).and_then(|_| w.flush()) {
                return Close::Write(e);
            }
        }
        // The idle period starts when the reply is out, not when the request came.
        reader.wait_mut().on_progress();
    }
}

fn write_exception(
    output: &mut dyn thrift::protocol::TOutputProtocol,
    header: &crate::wire::MessageHeader,
    error: &ApplicationError,
) -> thrift::Result<()> {
    let ident = TMessageIdentifier::new(header.name.clone(), TMessageType::Exception, header.sequence);
    output.write_message_begin(&ident)?;
    thrift::Error::write_application_error_to_out_protocol(error, output)?;
    output.write_message_end()?;
    output.flush()
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
