//! Warehouse storage: turns `storage` config into table locations and the
//! options each backend needs.
//!
//! Delta commits rely on an atomic create-if-absent of `_delta_log/N.json`.
//! Which backend serves which scheme is chosen for that guarantee (see
//! `docs/storage.md`): S3 goes through OpenDAL, whose S3 service writes with
//! `If-None-Match: *`; the local filesystem goes through object_store, which
//! publishes a commit with a hard link (OpenDAL's fs service either exposes a
//! half-written file or checks-then-renames, which lets two writers both
//! "win"); HDFS goes through hdfs-native (rename without overwrite), compiled
//! in with the `hdfs` feature.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Once;

use inlet_config::StorageConfig;
use url::Url;

use crate::TableError;

/// Which backend a location is served by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    S3,
    Hdfs,
}

/// The warehouse root and the storage options shared by all its tables.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Location,
}

/// Where one table (or the warehouse root) lives.
#[derive(Debug, Clone)]
pub struct Location {
    /// The URL handed to delta-rs (`file:///...`, `opendal+s3://...`, `hdfs://...`).
    pub url: Url,
    /// The location as users and other engines write it (`/data/wh/t`, `s3://b/t`).
    pub display: String,
    pub backend: Backend,
    /// Backend options (credentials, endpoint).
    pub options: HashMap<String, String>,
}

static REGISTER: Once = Once::new();

fn register_backends() {
    REGISTER.call_once(|| {
        deltalake::opendal::register_handlers(None);
        #[cfg(feature = "hdfs")]
        deltalake::hdfs::register_handlers(None);
    });
}

impl Warehouse {
    pub fn from_config(config: &StorageConfig) -> Result<Self, TableError> {
        register_backends();
        let root = Location::parse(&config.warehouse, config)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Location {
        &self.root
    }

    /// `<warehouse>/<database>.db/<table>`, or `explicit` when given (which may
    /// be absolute or relative to the warehouse).
    pub fn table_location(&self, database: &str, table: &str, explicit: Option<&str>, config: &StorageConfig) -> Result<Location, TableError> {
        match explicit {
            Some(loc) if loc.contains("://") || loc.starts_with('/') => Location::parse(loc, config),
            Some(rel) => Ok(self.root.join(rel)),
            None => Ok(self.root.join(&format!("{database}.db/{table}"))),
        }
    }
}

impl Location {
    pub fn parse(location: &str, config: &StorageConfig) -> Result<Self, TableError> {
        register_backends();
        let location = location.trim();
        let invalid = |reason: String| TableError::InvalidLocation { location: location.to_string(), reason };
        let (scheme, rest) = location.split_once("://").unwrap_or(("", location));
        match scheme {
            "" | "file" => {
                let path = if scheme.is_empty() { PathBuf::from(rest) } else { PathBuf::from(rest) };
                let abs = absolute(&path).map_err(|e| invalid(e.to_string()))?;
                let url = Url::from_directory_path(&abs).map_err(|_| invalid("not an absolute path".into()))?;
                let display = abs.to_string_lossy().trim_end_matches('/').to_string();
                Ok(Self { url, display, backend: Backend::Local, options: config.options.clone().into_iter().collect() })
            }
            "s3" | "s3a" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("no bucket name".into()));
                }
                let url = Url::parse(&format!("opendal+s3://{bucket}/{}", key.trim_matches('/')))
                    .map_err(|e| invalid(e.to_string()))?;
                let mut options: HashMap<String, String> = HashMap::new();
                let s3 = config.s3.clone().unwrap_or_default();
                let mut set = |k: &str, v: Option<String>| {
                    if let Some(v) = v {
                        options.insert(format!("opendal.{k}"), v);
                    }
                };
                set("endpoint", s3.endpoint.or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()));
                set("region", s3.region.or_else(|| std::env::var("AWS_REGION").ok()).or(Some("us-east-1".into())));
                set("access_key_id", s3.access_key_id);
                set("secret_access_key", s3.secret_access_key);
                set("session_token", s3.session_token);
                set("enable_virtual_host_style", Some((!s3.path_style).to_string()));
                for (k, v) in &config.options {
                    options.insert(k.clone(), v.clone());
                }
                let display = format!("s3://{bucket}/{}", key.trim_matches('/')).trim_end_matches('/').to_string();
                Ok(Self { url, display, backend: Backend::S3, options })
            }
            "hdfs" | "viewfs" => {
                if cfg!(feature = "hdfs") {
                    let url = Url::parse(location).map_err(|e| invalid(e.to_string()))?;
                    Ok(Self { url, display: location.trim_end_matches('/').to_string(), backend: Backend::Hdfs, options: config.options.clone().into_iter().collect() })
                } else {
                    Err(invalid("this build of inlet has no HDFS support; build with `--features hdfs`".into()))
                }
            }
            other => Err(invalid(format!("unsupported scheme `{other}://`"))),
        }
    }

    /// A location below this one.
    pub fn join(&self, relative: &str) -> Location {
        let rel = relative.trim_matches('/');
        let mut url = self.url.clone();
        let path = format!("{}/{rel}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        Location {
            url,
            display: format!("{}/{rel}", self.display.trim_end_matches('/')),
            backend: self.backend,
            options: self.options.clone(),
        }
    }

    /// The location as Hadoop-based engines (Spark, Hive, Trino) write it in
    /// a catalog: `file:/abs/path` for a local path, the URL otherwise.
    pub fn engine_uri(&self) -> String {
        let d = self.display.trim_end_matches('/');
        if d.starts_with('/') { format!("file:{d}") } else { d.to_string() }
    }

    /// An object store rooted at this location (paths relative to it), with
    /// the backend delta-rs uses for it.
    pub fn object_store(&self) -> Result<std::sync::Arc<dyn object_store::ObjectStore>, TableError> {
        let log_store = deltalake::DeltaTableBuilder::from_url(self.url.clone())
            .and_then(|b| b.with_storage_options(self.options.clone()).build_storage())
            .map_err(|e| TableError::Delta { location: self.display.clone(), source: Box::new(e) })?;
        Ok(log_store.object_store(None))
    }

    /// The URL string delta-rs is given.
    pub fn uri(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_string()
    }
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    let abs = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    // Normalise `.` and `..` without touching the filesystem (the directory
    // may not exist yet).
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(wh: &str) -> StorageConfig {
        StorageConfig { warehouse: wh.into(), s3: None, options: Default::default() }
    }

    #[test]
    fn local_paths_become_file_urls() {
        let cfg = storage("/data/./wh/../wh");
        let wh = Warehouse::from_config(&cfg).unwrap();
        let t = wh.table_location("db", "events", None, &cfg).unwrap();
        assert_eq!(t.display, "/data/wh/db.db/events");
        assert_eq!(t.uri(), "file:///data/wh/db.db/events");
        assert_eq!(t.backend, Backend::Local);
    }

    #[test]
    fn s3_goes_through_opendal_with_credentials() {
        let mut cfg = storage("s3://bucket/prefix");
        cfg.s3 = Some(inlet_config::S3Config { endpoint: Some("http://127.0.0.1:9000".into()), access_key_id: Some("k".into()), ..Default::default() });
        let wh = Warehouse::from_config(&cfg).unwrap();
        let t = wh.table_location("db", "events", None, &cfg).unwrap();
        assert_eq!(t.display, "s3://bucket/prefix/db.db/events");
        assert_eq!(t.uri(), "opendal+s3://bucket/prefix/db.db/events");
        assert_eq!(t.options.get("opendal.endpoint").map(String::as_str), Some("http://127.0.0.1:9000"));
        assert_eq!(t.options.get("opendal.access_key_id").map(String::as_str), Some("k"));
    }

    #[test]
    fn unknown_scheme_is_rejected() {
        let err = Location::parse("ftp://x/y", &storage("/x")).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }
}
