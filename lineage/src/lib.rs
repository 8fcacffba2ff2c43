//! OpenLineage events and table freshness (planned). The crate exists so
//! the workspace has its final shape; it exposes nothing yet and no command
//! reaches it.
