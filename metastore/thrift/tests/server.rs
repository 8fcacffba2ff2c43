//! The server over real TCP (port 0) with the generated Thrift client, in
//! every transport and protocol, and hostile clients that must lose only
//! their own connection.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use inlet_hms_thrift::fb303::{FacebookServiceSyncHandler, TFacebookServiceSyncClient};
use inlet_hms_thrift::hive_metastore::{
    Database, NoSuchObjectException, TThriftHiveMetastoreSyncClient,
    ThriftHiveMetastoreSyncClient, ThriftHiveMetastoreSyncHandler,
    ThriftHiveMetastoreSyncProcessor,
};
use inlet_hms_thrift::{ConnectionInfo, Protocol, ServerOptions, Shutdown, Transport, serve};
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol,
    TFieldIdentifier, TInputProtocol, TMessageIdentifier, TMessageType, TOutputProtocol,
    TStructIdentifier, TType,
};
use thrift::transport::{
    TBufferedReadTransport, TBufferedWriteTransport, TFramedReadTransport, TFramedWriteTransport,
    TIoChannel, TTcpChannel,
};
use thrift::ApplicationErrorKind;

/// Serves `get_database`, `get_all_databases` and `set_ugi`; everything else
/// is left to the generated defaults.
struct TestHandler {
    info: ConnectionInfo,
    user: RefCell<Option<String>>,
}

impl FacebookServiceSyncHandler for TestHandler {}

impl ThriftHiveMetastoreSyncHandler for TestHandler {
    fn handle_get_database(&self, name: String) -> thrift::Result<Database> {
        match name.as_str() {
            "default" => Ok(default_database()),
            "panic" => panic!("test handler asked to panic"),
            _ => Err(NoSuchObjectException::new(format!("database {name} does not exist")).into()),
        }
    }

    fn handle_get_all_databases(&self) -> thrift::Result<Vec<String>> {
        Ok(vec![
            "default".to_owned(),
            format!("{}-{}", self.info.transport, self.info.protocol),
            self.user.borrow().clone().unwrap_or_default(),
        ])
    }

    fn handle_set_ugi(&self, user_name: String, group_names: Vec<String>) -> thrift::Result<Vec<String>> {
        *self.user.borrow_mut() = Some(user_name);
        Ok(group_names)
    }
}

fn default_database() -> Database {
    Database {
        name: Some("default".to_owned()),
        description: Some("Default Hive database".to_owned()),
        location_uri: Some("file:/tmp/warehouse".to_owned()),
        parameters: Some(Default::default()),
        privileges: None,
        owner_name: Some("public".to_owned()),
        owner_type: None,
        catalog_name: Some("hive".to_owned()),
        create_time: Some(0),
        managed_location_uri: None,
        type_: None,
        connector_name: None,
        remote_dbname: None,
    }
}

struct TestServer {
    addr: SocketAddr,
    shutdown: Shutdown,
    done: Option<mpsc::Receiver<std::io::Result<()>>>,
}

impl TestServer {
    fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    fn start_with(options: ServerOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let stop = shutdown.clone();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let result = serve(
                listener,
                |info| {
                    ThriftHiveMetastoreSyncProcessor::new(TestHandler { info, user: RefCell::new(None) })
                },
                options,
                stop,
            );
            let _ = tx.send(result);
        });
        TestServer { addr, shutdown, done: Some(rx) }
    }

    /// Stops the server and waits (bounded) for `serve` to return.
    fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(done) = self.done.take() {
            done.recv_timeout(Duration::from_secs(10))
                .expect("serve did not return after shutdown")
                .unwrap();
        }
    }

    /// A fresh client answers: the server is still serving.
    fn assert_serving(&self) {
        let mut client = client(self.addr, Transport::Unframed, Protocol::Binary);
        assert_eq!(client.get_database("default".to_owned()).unwrap(), default_database());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop();
        } else {
            self.shutdown.trigger();
        }
    }
}

type Client = ThriftHiveMetastoreSyncClient<Box<dyn TInputProtocol>, Box<dyn TOutputProtocol>>;

fn client(addr: SocketAddr, transport: Transport, protocol: Protocol) -> Client {
    let mut channel = TTcpChannel::new();
    channel.open(addr).unwrap();
    let (r, w) = channel.split().unwrap();
    let (r, w): (Box<dyn Read>, Box<dyn Write>) = match transport {
        Transport::Framed => (Box::new(TFramedReadTransport::new(r)), Box::new(TFramedWriteTransport::new(w))),
        Transport::Unframed => {
            (Box::new(TBufferedReadTransport::new(r)), Box::new(TBufferedWriteTransport::new(w)))
        }
    };
    let (i, o): (Box<dyn TInputProtocol>, Box<dyn TOutputProtocol>) = match protocol {
        Protocol::Binary => (Box::new(TBinaryInputProtocol::new(r, true)), Box::new(TBinaryOutputProtocol::new(w, true))),
        Protocol::Compact => (Box::new(TCompactInputProtocol::new(r)), Box::new(TCompactOutputProtocol::new(w))),
    };
    ThriftHiveMetastoreSyncClient::new(i, o)
}

const ENCODINGS: [(Transport, Protocol); 4] = [
    (Transport::Unframed, Protocol::Binary),
    (Transport::Unframed, Protocol::Compact),
    (Transport::Framed, Protocol::Binary),
    (Transport::Framed, Protocol::Compact),
];

#[test]
fn round_trips_in_every_transport_and_protocol() {
    let server = TestServer::start();
    for (transport, protocol) in ENCODINGS {
        let mut c = client(server.addr, transport, protocol);
        assert_eq!(c.get_database("default".to_owned()).unwrap(), default_database());
        assert_eq!(c.set_ugi("alice".to_owned(), vec!["staff".to_owned()]).unwrap(), vec!["staff"]);
        assert_eq!(
            c.get_all_databases().unwrap(),
            vec!["default".to_owned(), format!("{transport}-{protocol}"), "alice".to_owned()]
        );
        // A declared exception arrives as itself, and the connection goes on.
        match c.get_database("nope".to_owned()) {
            Err(thrift::Error::User(e)) => {
                let e = e.downcast::<NoSuchObjectException>().expect("NoSuchObjectException");
                assert_eq!(e.message.as_deref(), Some("database nope does not exist"));
            }
            other => panic!("{transport}-{protocol}: expected NoSuchObjectException, got {other:?}"),
        }
        assert_eq!(c.get_database("default".to_owned()).unwrap(), default_database());
    }
}

#[test]
fn state_is_per_connection() {
    let server = TestServer::start();
    let mut a = client(server.addr, Transport::Unframed, Protocol::Binary);
    let mut b = client(server.addr, Transport::Unframed, Protocol::Binary);
    a.set_ugi("alice".to_owned(), vec![]).unwrap();
    b.set_ugi("bob".to_owned(), vec![]).unwrap();
    assert_eq!(a.get_all_databases().unwrap()[2], "alice");
    assert_eq!(b.get_all_databases().unwrap()[2], "bob");
}

fn assert_unknown_method(result: thrift::Result<impl std::fmt::Debug>, message: &str) {
    match result {
        Err(thrift::Error::Application(e)) => {
            assert_eq!(e.kind, ApplicationErrorKind::UnknownMethod, "{e:?}");
            assert_eq!(e.message, message);
        }
        other => panic!("expected UNKNOWN_METHOD, got {other:?}"),
    }
}

#[test]
fn unimplemented_idl_method_is_unknown_method_and_the_connection_goes_on() {
    let server = TestServer::start();
    for (transport, protocol) in ENCODINGS {
        let mut c = client(server.addr, transport, protocol);
        assert_unknown_method(c.get_table("default".to_owned(), "t".to_owned()), "get_table is not implemented");
        assert_unknown_method(c.get_name(), "getName is not implemented");
        assert_eq!(c.get_database("default".to_owned()).unwrap(), default_database());
    }
}

#[test]
fn unimplemented_oneway_call_gets_no_reply() {
    // fb303 `shutdown` is what Hive clients send on close; it is oneway, so
    // even the UNKNOWN_METHOD exception must not be written back (the client
    // would read it as the reply to its next call).
    let server = TestServer::start();
    for (transport, protocol) in ENCODINGS {
        let mut c = client(server.addr, transport, protocol);
        c.shutdown().unwrap();
        c.reinitialize().unwrap();
        assert_eq!(c.get_database("default".to_owned()).unwrap(), default_database());
    }
}

/// Encodes a call with an argument struct holding a string (field 1), a
/// list<i32> (field 2) and a nested struct (field 3), in `protocol`, framed or not.
fn hand_made_call(transport: Transport, protocol: Protocol, name: &str, seq: i32) -> Vec<u8> {
    let mut payload = Vec::new();
    {
        let mut o: Box<dyn TOutputProtocol> = match protocol {
            Protocol::Binary => Box::new(TBinaryOutputProtocol::new(&mut payload, true)),
            Protocol::Compact => Box::new(TCompactOutputProtocol::new(&mut payload)),
        };
        o.write_message_begin(&TMessageIdentifier::new(name, TMessageType::Call, seq)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("args")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("s", TType::String, 1)).unwrap();
        o.write_string("some argument").unwrap();
        o.write_field_end().unwrap();
        o.write_field_begin(&TFieldIdentifier::new("l", TType::List, 2)).unwrap();
        o.write_list_begin(&thrift::protocol::TListIdentifier::new(TType::I32, 3)).unwrap();
        for i in 0..3 {
            o.write_i32(i).unwrap();
        }
        o.write_list_end().unwrap();
        o.write_field_end().unwrap();
        o.write_field_begin(&TFieldIdentifier::new("n", TType::Struct, 3)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("n")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("b", TType::Bool, 1)).unwrap();
        o.write_bool(true).unwrap();
        o.write_field_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_field_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_message_end().unwrap();
        o.flush().unwrap();
    }
    match transport {
        Transport::Framed => {
            let mut out = (payload.len() as u32).to_be_bytes().to_vec();
            out.extend(payload);
            out
        }
        Transport::Unframed => payload,
    }
}

/// Reads one reply from a raw stream and returns its header and, for an
/// exception, the application error.
fn read_reply(
    stream: &mut TcpStream,
    transport: Transport,
    protocol: Protocol,
) -> (TMessageIdentifier, Option<thrift::ApplicationError>) {
    let reader: Box<dyn Read + '_> = match transport {
        Transport::Framed => Box::new(TFramedReadTransport::new(&mut *stream)),
        Transport::Unframed => Box::new(&mut *stream),
    };
    let mut i: Box<dyn TInputProtocol + '_> = match protocol {
        Protocol::Binary => Box::new(TBinaryInputProtocol::new(reader, true)),
        Protocol::Compact => Box::new(TCompactInputProtocol::new(reader)),
    };
    let ident = i.read_message_begin().unwrap();
    let error = if ident.message_type == TMessageType::Exception {
        Some(thrift::Error::read_application_error_from_in_protocol(&mut *i).unwrap())
    } else {
        None
    };
    (ident, error)
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn method_unknown_to_the_idl_is_unknown_method_and_the_connection_goes_on() {
    let server = TestServer::start();
    for (transport, protocol) in ENCODINGS {
        let mut s = raw(server.addr);
        s.write_all(&hand_made_call(transport, protocol, "no_such_method", 41)).unwrap();
        let (ident, error) = read_reply(&mut s, transport, protocol);
        assert_eq!((ident.name.as_str(), ident.sequence_number), ("no_such_method", 41));
        let error = error.expect("an exception");
        assert_eq!(error.kind, ApplicationErrorKind::UnknownMethod);
        // The unread arguments were dropped with the message; the next call on
        // the same connection is understood.
        s.write_all(&hand_made_call(transport, protocol, "get_all_databases", 42)).unwrap();
        let (ident, error) = read_reply(&mut s, transport, protocol);
        assert_eq!((ident.name.as_str(), ident.message_type, ident.sequence_number), ("get_all_databases", TMessageType::Reply, 42));
        assert!(error.is_none());
    }
}

/// Waits until the server closes `s`: a read returns end of file or a reset.
fn assert_closed_by_server(s: &mut TcpStream) {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue, // e.g. an exception reply before the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => return,
            Err(e) => panic!("connection not closed after {:?}: {e}", started.elapsed()),
        }
    }
}

#[test]
fn garbage_closes_only_that_connection() {
    let server = TestServer::start();
    let mut bystander = client(server.addr, Transport::Framed, Protocol::Compact);
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[0x80, 0x02, 0, 1, 0, 0, 0, 0][..],
        &[0x82, 0xff, 0xff][..],
        &[0, 0, 0, 5, 0x42, 1, 2, 3, 4][..],
    ] {
        let mut s = raw(server.addr);
        s.write_all(garbage).unwrap();
        assert_closed_by_server(&mut s);
        server.assert_serving();
        assert!(bystander.get_all_databases().is_ok());
    }
}

#[test]
fn truncated_frames_close_only_that_connection() {
    let server = TestServer::start();
    let full = hand_made_call(Transport::Framed, Protocol::Binary, "get_database", 1);
    // Closed mid-frame: the server sees the end and closes.
    let mut s = raw(server.addr);
    s.write_all(&full[..full.len() / 2]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed_by_server(&mut s);
    server.assert_serving();
    // Left hanging mid-frame: others are served meanwhile.
    let mut hanging = raw(server.addr);
    hanging.write_all(&full[..full.len() - 1]).unwrap();
    server.assert_serving();
    // A frame shorter than the message it holds.
    let mut short = full.clone();
    let inner = (full.len() - 4 - 6) as u32;
    short[..4].copy_from_slice(&inner.to_be_bytes());
    short.truncate(4 + inner as usize);
    let mut s = raw(server.addr);
    s.write_all(&short).unwrap();
    assert_closed_by_server(&mut s);
    server.assert_serving();
    drop(hanging);
}

#[test]
fn oversized_frame_length_closes_the_connection_at_once() {
    let server = TestServer::start_with(ServerOptions { max_message_bytes: 1 << 20, ..ServerOptions::default() });
    let mut s = raw(server.addr);
    let mut bytes = 0x7fff_fff0u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x80, 0x01, 0x00, 0x01]);
    s.write_all(&bytes).unwrap();
    assert_closed_by_server(&mut s);
    // Just over the configured limit.
    let mut s = raw(server.addr);
    let mut bytes = ((1u32 << 20) + 1).to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0x82, 0x21]);
    s.write_all(&bytes).unwrap();
    assert_closed_by_server(&mut s);
    server.assert_serving();
}

#[test]
fn list_header_claiming_two_billion_elements_closes_the_connection() {
    let server = TestServer::start();
    // get_database(1: list<string> of 0x7fffffff elements), binary, unframed
    // and framed; compact, unframed.
    let mut binary = vec![0x80, 0x01, 0x00, 0x01, 0, 0, 0, 12];
    binary.extend_from_slice(b"get_database");
    binary.extend_from_slice(&[0, 0, 0, 1, 15, 0, 1, 11, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 3, b'a', b'b', b'c']);
    let mut framed = (binary.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(&binary);
    let mut compact = vec![0x82, 0x21, 0x01, 12];
    compact.extend_from_slice(b"get_database");
    compact.extend_from_slice(&[0x19, 0xf8, 0x80, 0x80, 0x80, 0x80, 0x08, 3, b'a', b'b', b'c']);
    for bytes in [binary, framed, compact] {
        let mut s = raw(server.addr);
        s.write_all(&bytes).unwrap();
        assert_closed_by_server(&mut s);
        server.assert_serving();
    }
}

#[test]
fn deeply_nested_structs_close_the_connection() {
    let server = TestServer::start();
    for protocol in [Protocol::Binary, Protocol::Compact] {
        let mut payload = Vec::new();
        {
            let mut o: Box<dyn TOutputProtocol> = match protocol {
                Protocol::Binary => Box::new(TBinaryOutputProtocol::new(&mut payload, true)),
                Protocol::Compact => Box::new(TCompactOutputProtocol::new(&mut payload)),
            };
            o.write_message_begin(&TMessageIdentifier::new("get_database", TMessageType::Call, 1)).unwrap();
            for _ in 0..10_000 {
                o.write_struct_begin(&TStructIdentifier::new("s")).unwrap();
                o.write_field_begin(&TFieldIdentifier::new("f", TType::Struct, 1)).unwrap();
            }
        }
        let mut s = raw(server.addr);
        s.write_all(&payload).unwrap();
        assert_closed_by_server(&mut s);
        server.assert_serving();
    }
}

#[test]
fn a_panicking_handler_fails_its_call_and_closes_only_its_connection() {
    let server = TestServer::start();
    let mut bystander = client(server.addr, Transport::Unframed, Protocol::Binary);
    let mut c = client(server.addr, Transport::Unframed, Protocol::Binary);
    match c.get_database("panic".to_owned()) {
        Err(thrift::Error::Application(e)) => assert_eq!(e.kind, ApplicationErrorKind::InternalError),
        other => panic!("expected INTERNAL_ERROR, got {other:?}"),
    }
    // That connection is closed.
    assert!(c.get_database("default".to_owned()).is_err());
    assert_eq!(bystander.get_database("default".to_owned()).unwrap(), default_database());
    server.assert_serving();
}

#[test]
fn connections_over_the_limit_are_closed() {
    let server = TestServer::start_with(ServerOptions { max_connections: 1, ..ServerOptions::default() });
    let mut first = client(server.addr, Transport::Unframed, Protocol::Binary);
    assert!(first.get_all_databases().is_ok());
    let mut second = raw(server.addr);
    assert_closed_by_server(&mut second);
    drop(first);
    // The slot frees when the first connection's thread ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = client(server.addr, Transport::Unframed, Protocol::Binary);
        match c.get_all_databases() {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("slot never freed: {e:?}"),
        }
    }
}

#[test]
fn idle_connections_close_after_idle_timeout() {
    let server = TestServer::start_with(ServerOptions {
        idle_timeout: Some(Duration::from_millis(300)),
        ..ServerOptions::default()
    });
    let mut s = raw(server.addr);
    s.write_all(&hand_made_call(Transport::Unframed, Protocol::Binary, "get_all_databases", 1)).unwrap();
    let (ident, _) = read_reply(&mut s, Transport::Unframed, Protocol::Binary);
    assert_eq!(ident.message_type, TMessageType::Reply);
    assert_closed_by_server(&mut s);
}

#[test]
fn shutdown_is_graceful_with_open_connections() {
    let mut server = TestServer::start();
    let mut c = client(server.addr, Transport::Framed, Protocol::Binary);
    assert!(c.get_all_databases().is_ok());
    let mut idle = raw(server.addr);
    idle.write_all(&hand_made_call(Transport::Unframed, Protocol::Compact, "get_all_databases", 1)).unwrap();
    let _ = read_reply(&mut idle, Transport::Unframed, Protocol::Compact);
    server.stop(); // returns only once every connection thread has ended
    assert_closed_by_server(&mut idle);
    assert!(c.get_all_databases().is_err());
}
