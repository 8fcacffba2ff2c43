//! The little the metastore does to table data itself: deleting the
//! directory of a dropped managed table, database or partition, as Hive's
//! metastore does (`deleteData`). Local paths (`file:` URIs and absolute
//! paths) are deleted here; object-store and HDFS locations are left in
//! place with a warning, since this server holds no storage credentials.

use tracing::{info, warn};

use crate::catalog::CatalogError;

/// The local path of a location, when it is one.
pub fn local_path(location: &str) -> Option<std::path::PathBuf> {
    if let Some(rest) = location.strip_prefix("file:") {
        let rest = rest.trim_start_matches("//");
        // `file:///a/b` -> `/a/b`; `file:/a/b` (Hadoop's form) -> `/a/b`.
        let path = if rest.starts_with('/') { rest.to_string() } else { format!("/{rest}") };
        // Hadoop writes paths unencoded (a Hive partition directory's
        // literal name holds `%3A`), so no percent-decoding here.
        return Some(path.into());
    }
    if location.starts_with('/') {
        return Some(location.into());
    }
    None
}

/// Deletes a directory tree; a missing directory is fine.
pub async fn delete_dir(location: &str) -> Result<(), CatalogError> {
    match local_path(location) {
        Some(path) => match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => {
                info!(location, "deleted data of a dropped object");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CatalogError::Storage(format!("could not delete {}: {e}", path.display()))),
        },
        None => {
            warn!(location, "data of a dropped managed object left in place: the metastore deletes only local paths");
            Ok(())
        }
    }
}

/// Deletes a dropped partition's directory and then its parents while they
/// are empty, up to (not including) `stop_at`, as Hive's metastore does
/// (`dt=1/hr=0` and `dt=1/hr=1` gone leaves no empty `dt=1`).
pub async fn delete_partition_dir(location: &str, stop_at: &str) -> Result<(), CatalogError> {
    delete_dir(location).await?;
    if let (Some(mut dir), Some(stop)) = (local_path(location), local_path(stop_at)) {
        while let Some(parent) = dir.parent().map(|p| p.to_path_buf()) {
            if !parent.starts_with(&stop) || parent == stop {
                break;
            }
            // Fails (and stops) when the directory is not empty.
            if tokio::fs::remove_dir(&parent).await.is_err() {
                break;
            }
            dir = parent;
        }
    }
    Ok(())
}

/// Creates a directory tree for a new managed object, as Hive does; only
/// for local paths (object stores have no directories).
pub async fn make_dir(location: &str) -> Result<(), CatalogError> {
    if let Some(path) = local_path(location) {
        tokio::fs::create_dir_all(&path).await.map_err(|e| CatalogError::Storage(format!("could not create {}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_forms() {
        assert_eq!(local_path("file:///a/b").unwrap().to_str(), Some("/a/b"));
        assert_eq!(local_path("file:/a/b").unwrap().to_str(), Some("/a/b"));
        assert_eq!(local_path("/a/b%3Dc").unwrap().to_str(), Some("/a/b%3Dc"));
        assert_eq!(local_path("file:/a/ds=2024-01-01").unwrap().to_str(), Some("/a/ds=2024-01-01"));
        assert!(local_path("s3a://b/k").is_none());
    }
}
