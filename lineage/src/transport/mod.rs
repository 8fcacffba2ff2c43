//! The transports: HTTP to any OpenLineage receiver, a JSON-lines file, and
//! the lineage store of the catalog database.

pub mod file;
pub mod http;
pub mod store;

pub use file::FileTransport;
pub use http::HttpTransport;
pub use store::{LineageStore, StoreTransport};
