//! A blocking client over TCP, unframed binary protocol: what Hive 2.3's
//! client (Spark's) speaks by default. For tests, tools and benchmarks.

use std::io::{Read, Write};
use std::net::SocketAddr;

use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol, TInputProtocol, TOutputProtocol};
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport, TIoChannel, TTcpChannel};

use crate::hive_metastore::ThriftHiveMetastoreSyncClient;

/// The generated client over boxed protocols.
pub type Client = ThriftHiveMetastoreSyncClient<Box<dyn TInputProtocol>, Box<dyn TOutputProtocol>>;

/// Connects to a metastore at `addr`.
pub fn connect(addr: SocketAddr) -> thrift::Result<Client> {
    let mut channel = TTcpChannel::new();
    channel.open(addr)?;
    let (r, w) = channel.split()?;
    let r: Box<dyn Read> = Box::new(TBufferedReadTransport::new(r));
    let w: Box<dyn Write> = Box::new(TBufferedWriteTransport::new(w));
    let i: Box<dyn TInputProtocol> = Box::new(TBinaryInputProtocol::new(r, true));
    let o: Box<dyn TOutputProtocol> = Box::new(TBinaryOutputProtocol::new(w, true));
    Ok(ThriftHiveMetastoreSyncClient::new(i, o))
}
