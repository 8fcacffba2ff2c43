//! Unit tests of the grammar walk, the reader and the buffer protocols.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TCompactInputProtocol, TCompactOutputProtocol, TFieldIdentifier, TInputProtocol,
    TListIdentifier, TMessageIdentifier, TMessageType, TOutputProtocol, TSerializable,
    TStructIdentifier, TType,
};

use super::*;
use crate::hive_metastore::{Database, FieldSchema, PrincipalType, StorageDescriptor};

const BOTH: [Protocol; 2] = [Protocol::Binary, Protocol::Compact];

fn limits() -> Limits {
    Limits { max_message_bytes: 1 << 20, max_depth: 64 }
}

fn output(protocol: Protocol, buf: &mut Vec<u8>) -> Box<dyn TOutputProtocol + '_> {
    match protocol {
        Protocol::Binary => Box::new(TBinaryOutputProtocol::new(buf, true)),
        Protocol::Compact => Box::new(TCompactOutputProtocol::new(buf)),
    }
}

fn database() -> Database {
    let mut parameters = BTreeMap::new();
    parameters.insert("owner".to_owned(), "inlet".to_owned());
    parameters.insert("empty".to_owned(), String::new());
    Database {
        name: Some("sales".to_owned()),
        description: Some("the sales database".to_owned()),
        location_uri: Some("s3://bucket/sales.db".to_owned()),
        parameters: Some(parameters),
        privileges: None,
        owner_name: Some("alice".to_owned()),
        owner_type: Some(PrincipalType::USER),
        catalog_name: Some("hive".to_owned()),
        create_time: Some(-12345),
        managed_location_uri: None,
        type_: None,
        connector_name: None,
        remote_dbname: None,
    }
}

fn storage() -> StorageDescriptor {
    StorageDescriptor {
        cols: Some(vec![
            FieldSchema::new("id".to_owned(), "bigint".to_owned(), None),
            FieldSchema::new("name".to_owned(), "string".to_owned(), "a comment".to_owned()),
        ]),
        location: Some("/warehouse/t".to_owned()),
        input_format: None,
        output_format: None,
        compressed: Some(true),
        num_buckets: Some(-1),
        serde_info: None,
        bucket_cols: Some(vec![]),
        sort_cols: Some(vec![]),
        parameters: Some(BTreeMap::new()),
        skewed_info: None,
        stored_as_sub_directories: Some(false),
    }
}

/// A call message whose argument struct is `Database` (field 1) and a
/// `StorageDescriptor` (field 2): strings, maps, lists, bools, i32, enums,
/// nested structs.
fn message(protocol: Protocol, name: &str, seq: i32) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut o = output(protocol, &mut buf);
        o.write_message_begin(&TMessageIdentifier::new(name, TMessageType::Call, seq)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("args")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("db", TType::Struct, 1)).unwrap();
        database().write_to_out_protocol(&mut *o).unwrap();
        o.write_field_end().unwrap();
        o.write_field_begin(&TFieldIdentifier::new("sd", TType::Struct, 2)).unwrap();
        storage().write_to_out_protocol(&mut *o).unwrap();
        o.write_field_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_message_end().unwrap();
    }
    buf
}

fn walk(bytes: &[u8], protocol: Protocol, limits: Limits) -> Result<(MessageHeader, usize), WireError> {
    let mut source = SliceSource { bytes, pos: 0 };
    let header = walk_message(&mut source, protocol, limits)?;
    Ok((header, source.pos))
}

/// Delivers its bytes one at a time, as a slow network would.
struct Trickle(Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[test]
fn walks_valid_messages_exactly() {
    for protocol in BOTH {
        let bytes = message(protocol, "create_database", 7);
        let (header, end) = walk(&bytes, protocol, limits()).unwrap();
        assert_eq!(header, MessageHeader { name: "create_database".into(), kind: 1, sequence: 7 });
        assert_eq!(end, bytes.len(), "{protocol}");
    }
}

/// Reads the argument struct of `message()` with any input protocol.
fn read_args(input: &mut dyn TInputProtocol) -> (String, i32, Database, StorageDescriptor) {
    let ident = input.read_message_begin().unwrap();
    input.read_struct_begin().unwrap();
    let f = input.read_field_begin().unwrap();
    assert_eq!((f.field_type, f.id), (TType::Struct, Some(1)));
    let db = Database::read_from_in_protocol(input).unwrap();
    input.read_field_end().unwrap();
    let f = input.read_field_begin().unwrap();
    assert_eq!((f.field_type, f.id), (TType::Struct, Some(2)));
    let sd = StorageDescriptor::read_from_in_protocol(input).unwrap();
    input.read_field_end().unwrap();
    assert_eq!(input.read_field_begin().unwrap().field_type, TType::Stop);
    (ident.name, ident.sequence_number, db, sd)
}

#[test]
fn buffer_protocol_decodes_like_the_thrift_crate() {
    for protocol in BOTH {
        let bytes = message(protocol, "m", -3);
        let mut ours = BufferInputProtocol::new(&bytes, protocol);
        let decoded = read_args(&mut ours);
        assert_eq!(ours.remaining(), 0, "{protocol}");
        let reference = match protocol {
            Protocol::Binary => read_args(&mut TBinaryInputProtocol::new(Cursor::new(&bytes), true)),
            Protocol::Compact => read_args(&mut TCompactInputProtocol::new(Cursor::new(&bytes))),
        };
        assert_eq!(decoded, reference, "{protocol}");
        assert_eq!((decoded.0.as_str(), decoded.1), ("m", -3));
        assert_eq!(decoded.2.parameters, database().parameters);
        assert_eq!(decoded.3.cols.as_ref().unwrap()[1], storage().cols.unwrap()[1]);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for protocol in BOTH {
        let bytes = message(protocol, "get_table", 1);
        for cut in 0..bytes.len() {
            // Truncated, or a length that no longer fits what is left.
            let result = walk(&bytes[..cut], protocol, limits());
            assert!(
                matches!(result, Err(WireError::Truncated { .. } | WireError::BadSize { .. })),
                "{protocol} cut at {cut}: {result:?}"
            );
        }
    }
}

#[test]
fn reader_reads_unframed_messages_back_to_back_from_a_trickle() {
    for protocol in BOTH {
        let mut stream = message(protocol, "first", 1);
        stream.extend(message(protocol, "second", 2));
        let mut reader = MessageReader::new(Trickle(Cursor::new(stream)), WaitForever, limits());
        let m1 = reader.next_message().unwrap();
        assert_eq!(reader.encoding().unwrap().transport, Transport::Unframed);
        assert_eq!(reader.encoding().unwrap().protocol, protocol);
        let m2 = reader.next_message().unwrap();
        assert_eq!((m1.header.name.as_str(), m2.header.name.as_str()), ("first", "second"));
        assert_eq!(m1.bytes, message(protocol, "first", 1));
        assert!(matches!(reader.next_message(), Err(WireError::Closed)));
    }
}

#[test]
fn reader_reads_framed_messages() {
    for protocol in BOTH {
        let mut stream = framed(&message(protocol, "first", 1));
        stream.extend(framed(&message(protocol, "second", 2)));
        let mut reader = MessageReader::new(Cursor::new(stream), WaitForever, limits());
        let m1 = reader.next_message().unwrap();
        assert_eq!(reader.encoding(), Some(Encoding { transport: Transport::Framed, protocol }));
        assert_eq!(m1.bytes, message(protocol, "first", 1));
        assert_eq!(reader.next_message().unwrap().header.name, "second");
        assert!(matches!(reader.next_message(), Err(WireError::Closed)));
    }
}

#[test]
fn truncated_stream_is_truncated_not_closed() {
    for protocol in BOTH {
        let bytes = message(protocol, "x", 1);
        let cut = bytes[..bytes.len() - 3].to_vec();
        let mut reader = MessageReader::new(Cursor::new(cut.clone()), WaitForever, limits());
        assert!(matches!(reader.next_message(), Err(WireError::Truncated { .. })));
        let mut reader = MessageReader::new(Cursor::new(framed(&bytes)[..20].to_vec()), WaitForever, limits());
        assert!(matches!(reader.next_message(), Err(WireError::Truncated { .. })));
    }
}

#[test]
fn garbage_is_not_a_thrift_message() {
    for garbage in [&b"GET / HTTP/1.1\r\n\r\n"[..], &[0x80, 0x02, 0, 1][..], &[0, 0, 0, 9, b'x'][..]] {
        let mut reader = MessageReader::new(Cursor::new(garbage.to_vec()), WaitForever, limits());
        let result = reader.next_message();
        assert!(matches!(result, Err(WireError::UnknownEncoding(_))), "{garbage:?}: {result:?}");
    }
}

#[test]
fn oversized_frame_is_refused_before_its_body() {
    let mut stream = 0x7fff_fff0u32.to_be_bytes().to_vec();
    stream.extend_from_slice(&[0x80, 0x01, 0x00, 0x01]);
    let mut reader = MessageReader::new(Cursor::new(stream), WaitForever, limits());
    let result = reader.next_message();
    assert!(matches!(result, Err(WireError::TooLarge { size: 0x7fff_fff0, .. })), "{result:?}");
    let mut reader = MessageReader::new(Cursor::new(vec![0, 0, 0, 0, 0x80]), WaitForever, limits());
    assert!(matches!(reader.next_message(), Err(WireError::EmptyFrame)));
}

#[test]
fn oversized_unframed_message_stops_at_the_limit() {
    for protocol in BOTH {
        let bytes = message(protocol, "big", 1);
        let small = Limits { max_message_bytes: bytes.len() - 1, max_depth: 64 };
        let mut reader = MessageReader::new(Cursor::new(bytes.clone()), WaitForever, small);
        let result = reader.next_message();
        assert!(matches!(result, Err(WireError::TooLarge { .. } | WireError::BadSize { .. })), "{result:?}");
        let exact = Limits { max_message_bytes: bytes.len(), max_depth: 64 };
        let mut reader = MessageReader::new(Cursor::new(bytes), WaitForever, exact);
        assert!(reader.next_message().is_ok());
    }
}

/// Header of a call named "m", seq 0, then an argument struct with one field
/// 1 of the given type whose value starts with `value`.
fn call_with_field(protocol: Protocol, binary_type: u8, compact_type: u8, value: &[u8]) -> Vec<u8> {
    let mut out = match protocol {
        Protocol::Binary => vec![0x80, 0x01, 0x00, 0x01, 0, 0, 0, 1, b'm', 0, 0, 0, 0, binary_type, 0, 1],
        Protocol::Compact => vec![0x82, 0x21, 0x00, 0x01, b'm', 0x10 | compact_type],
    };
    out.extend_from_slice(value);
    out
}

#[test]
fn list_claiming_two_billion_elements_fails_at_its_header() {
    // binary: list<i32> of 0x7fffffff elements; compact: list<struct> of 2^31.
    let binary = call_with_field(Protocol::Binary, 15, 9, &[8, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
    let compact = call_with_field(Protocol::Compact, 15, 9, &[0xfc, 0x80, 0x80, 0x80, 0x80, 0x08, 0]);
    for (protocol, bytes) in [(Protocol::Binary, binary), (Protocol::Compact, compact)] {
        let result = walk(&bytes, protocol, limits());
        assert!(matches!(result, Err(WireError::BadSize { .. })), "{protocol}: {result:?}");
        // The same bytes through the reader: refused without reading further.
        let mut reader = MessageReader::new(Cursor::new(bytes.clone()), WaitForever, limits());
        assert!(matches!(reader.next_message(), Err(WireError::BadSize { .. })));
        // And the decoder refuses the count on its own too.
        let mut input = BufferInputProtocol::new(&bytes, protocol);
        input.read_message_begin().unwrap();
        input.read_struct_begin().unwrap();
        input.read_field_begin().unwrap();
        assert!(input.read_list_begin().is_err(), "{protocol}");
    }
}

#[test]
fn negative_and_oversized_string_lengths_fail() {
    let negative = call_with_field(Protocol::Binary, 11, 8, &[0xff, 0xff, 0xff, 0xfe]);
    assert!(matches!(walk(&negative, Protocol::Binary, limits()), Err(WireError::BadSize { size: -2, .. })));
    let long = call_with_field(Protocol::Compact, 11, 8, &[0xff, 0xff, 0xff, 0xff, 0x07]);
    assert!(matches!(walk(&long, Protocol::Compact, limits()), Err(WireError::BadSize { .. })));
    let mut input = BufferInputProtocol::new(&negative, Protocol::Binary);
    input.read_message_begin().unwrap();
    input.read_struct_begin().unwrap();
    input.read_field_begin().unwrap();
    assert!(input.read_string().is_err());
}

#[test]
fn map_count_is_bounded_by_its_entry_width() {
    // binary map<i64,i64> with 2 entries needs 32 bytes; only 16 follow.
    let mut value = vec![10, 10, 0, 0, 0, 2];
    value.extend_from_slice(&[0; 16]);
    value.push(0);
    let bytes = call_with_field(Protocol::Binary, 13, 11, &value);
    assert!(matches!(walk(&bytes, Protocol::Binary, limits()), Err(WireError::BadSize { size: 2, .. })));
}

fn nested(protocol: Protocol, depth: usize) -> Vec<u8> {
    // Argument struct whose field 1 is a struct whose field 1 is a struct ...
    let mut buf = Vec::new();
    let mut o = output(protocol, &mut buf);
    o.write_message_begin(&TMessageIdentifier::new("deep", TMessageType::Call, 1)).unwrap();
    for _ in 0..depth {
        o.write_struct_begin(&TStructIdentifier::new("s")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("f", TType::Struct, 1)).unwrap();
    }
    o.write_struct_begin(&TStructIdentifier::new("s")).unwrap();
    o.write_field_stop().unwrap();
    o.write_struct_end().unwrap();
    for _ in 0..depth {
        o.write_field_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
    }
    o.write_message_end().unwrap();
    drop(o);
    buf
}

#[test]
fn nesting_is_limited() {
    for protocol in BOTH {
        // depth 64 = the argument struct plus 63 nested ones.
        assert!(walk(&nested(protocol, 63), protocol, limits()).is_ok(), "{protocol}");
        let result = walk(&nested(protocol, 64), protocol, limits());
        assert!(matches!(result, Err(WireError::TooDeep { limit: 64 })), "{protocol}: {result:?}");
        // Far deeper input fails the same way (no stack overflow).
        let result = walk(&nested(protocol, 100_000), protocol, limits());
        assert!(matches!(result, Err(WireError::TooDeep { .. })), "{protocol}");
    }
}

#[test]
fn nested_lists_count_towards_depth() {
    // binary: field 1 is list<list<list<...<i32>>>>, `levels` deep.
    let lists = |levels: usize| {
        let mut value = Vec::new();
        for _ in 1..levels {
            value.extend_from_slice(&[15, 0, 0, 0, 1]); // one element: a list
        }
        value.extend_from_slice(&[8, 0, 0, 0, 0]); // innermost: empty list<i32>
        value.push(0); // end of the argument struct
        // The field header says "list"; the value starts at its element type.
        call_with_field(Protocol::Binary, 15, 9, &value)
    };
    let ok = lists(63);
    assert_eq!(walk(&ok, Protocol::Binary, limits()).unwrap().1, ok.len());
    let result = walk(&lists(64), Protocol::Binary, limits());
    assert!(matches!(result, Err(WireError::TooDeep { .. })), "{result:?}");
}

#[test]
fn unknown_types_and_message_kinds_fail() {
    let bad_field = call_with_field(Protocol::Binary, 1, 0, &[]); // void
    assert!(matches!(walk(&bad_field, Protocol::Binary, limits()), Err(WireError::BadType { code: 1, .. })));
    let bad_field = call_with_field(Protocol::Compact, 0, 13, &[]);
    assert!(matches!(walk(&bad_field, Protocol::Compact, limits()), Err(WireError::BadType { code: 13, .. })));
    let bad_kind = [0x80, 0x01, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(walk(&bad_kind, Protocol::Binary, limits()), Err(WireError::BadMessageType { code: 9, .. })));
    let bad_varint = [0x82, 0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert!(matches!(walk(&bad_varint, Protocol::Compact, limits()), Err(WireError::BadVarint { .. })));
}

#[test]
fn compact_bools_and_field_deltas() {
    let mut buf = Vec::new();
    {
        let mut o = output(Protocol::Compact, &mut buf);
        o.write_message_begin(&TMessageIdentifier::new("b", TMessageType::OneWay, 1)).unwrap();
        o.write_struct_begin(&TStructIdentifier::new("args")).unwrap();
        o.write_field_begin(&TFieldIdentifier::new("t", TType::Bool, 1)).unwrap();
        o.write_bool(true).unwrap();
        o.write_field_end().unwrap();
        o.write_field_begin(&TFieldIdentifier::new("far", TType::Bool, 300)).unwrap();
        o.write_bool(false).unwrap();
        o.write_field_end().unwrap();
        o.write_field_begin(&TFieldIdentifier::new("l", TType::List, 301)).unwrap();
        o.write_list_begin(&TListIdentifier::new(TType::Bool, 20)).unwrap();
        for i in 0..20 {
            o.write_bool(i % 3 == 0).unwrap();
        }
        o.write_list_end().unwrap();
        o.write_field_end().unwrap();
        o.write_field_stop().unwrap();
        o.write_struct_end().unwrap();
        o.write_message_end().unwrap();
    }
    let (header, end) = walk(&buf, Protocol::Compact, limits()).unwrap();
    assert!(header.is_oneway());
    assert_eq!(end, buf.len());
    let mut input = BufferInputProtocol::new(&buf, Protocol::Compact);
    input.read_message_begin().unwrap();
    input.read_struct_begin().unwrap();
    let f = input.read_field_begin().unwrap();
    assert_eq!((f.id, input.read_bool().unwrap()), (Some(1), true));
    let f = input.read_field_begin().unwrap();
    assert_eq!((f.id, input.read_bool().unwrap()), (Some(300), false));
    let f = input.read_field_begin().unwrap();
    assert_eq!(f.id, Some(301));
    let l = input.read_list_begin().unwrap();
    assert_eq!(l.size, 20);
    let bools: Vec<bool> = (0..20).map(|_| input.read_bool().unwrap()).collect();
    assert_eq!(bools, (0..20).map(|i| i % 3 == 0).collect::<Vec<_>>());
}

/// A small deterministic generator, so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn corrupted_messages_never_panic_and_decode_only_what_walked() {
    let mut rng = Lcg(42);
    for protocol in BOTH {
        let original = message(protocol, "get_partitions_by_names", 99);
        for _ in 0..3000 {
            let mut bytes = original.clone();
            for _ in 0..=(rng.next() % 4) {
                let i = (rng.next() as usize) % bytes.len();
                bytes[i] = rng.next() as u8;
            }
            if rng.next() % 5 == 0 {
                bytes.truncate((rng.next() as usize) % bytes.len());
            }
            let small = Limits { max_message_bytes: 4096, max_depth: 8 };
            if let Ok((_, end)) = walk(&bytes, protocol, small) {
                // Whatever walked decodes (or fails) without panicking or
                // allocating more than the message.
                let mut input = BufferInputProtocol::new(&bytes[..end], protocol);
                if input.read_message_begin().is_ok() {
                    let _ = input.skip(TType::Struct);
                }
            }
            let mut reader = MessageReader::new(Cursor::new(bytes), WaitForever, small);
            while reader.next_message().is_ok() {}
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Lcg(7);
    for _ in 0..5000 {
        let len = (rng.next() % 64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = bytes.first_mut() {
            *first = [0x80, 0x82, 0x00][(rng.next() % 3) as usize];
        }
        if bytes.len() > 1 && bytes[0] == 0x80 {
            bytes[1] = 0x01;
        }
        let mut reader = MessageReader::new(Cursor::new(bytes.clone()), WaitForever, limits());
        let _ = reader.next_message();
        for protocol in BOTH {
            let mut input = BufferInputProtocol::new(&bytes, protocol);
            if input.read_message_begin().is_ok() {
                let _ = input.skip(TType::Struct);
            }
        }
    }
}
