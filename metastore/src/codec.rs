//! How catalog objects are kept in the store: whole Thrift structs encoded
//! with the compact protocol. Keeping the client's own struct means every
//! field (including ones this server never looks at, from newer IDLs)
//! round-trips unchanged.

use inlet_hms_thrift::hive_metastore as hms;
use thrift::protocol::{TCompactInputProtocol, TCompactOutputProtocol, TInputProtocol, TOutputProtocol, TSerializable};

use crate::store::StoreError;

pub fn encode<T: TSerializable>(value: &T) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    {
        let mut out = TCompactOutputProtocol::new(&mut buf);
        // Writing into a Vec cannot fail: the only errors are I/O errors.
        value.write_to_out_protocol(&mut out).expect("encode into memory");
        out.flush().expect("flush into memory");
    }
    buf
}

pub fn decode<T: TSerializable>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    let mut input = TCompactInputProtocol::new(bytes);
    T::read_from_in_protocol(&mut input as &mut dyn TInputProtocol).map_err(|e| StoreError::Corrupt { what: what.to_string(), reason: e.to_string() })
}

pub fn decode_table(bytes: &[u8]) -> Result<hms::Table, StoreError> {
    decode("table", bytes)
}

pub fn decode_partition(bytes: &[u8]) -> Result<hms::Partition, StoreError> {
    decode("partition", bytes)
}

pub fn decode_database(bytes: &[u8]) -> Result<hms::Database, StoreError> {
    decode("database", bytes)
}
