//! Hive Metastore Thrift bindings (being generated).
