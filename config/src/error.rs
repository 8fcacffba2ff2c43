//! Configuration errors: each names its key path and, where the key exists in
//! the file, its line and column. They are collected, never thrown one by one.

use std::fmt;

use crate::yaml::{render_path, PathSegment};

/// A 1-based position in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub column: usize,
}

impl Span {
    /// The earlier of two positions.
    pub fn min_by(self, other: Span) -> Span {
        if (other.line, other.column) < (self.line, self.column) { other } else { self }
    }
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub path: Vec<PathSegment>,
    pub span: Option<Span>,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: Vec<PathSegment>, span: Option<Span>, message: impl Into<String>) -> Self {
        Self { path, span, message: message.into() }
    }

    /// The key path as shown to users, e.g. `pipelines[0].flush.max_rows`.
    pub fn key_path(&self) -> String {
        render_path(&self.path)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = self.span {
            write!(f, "{}:{}: ", span.line, span.column)?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key_path(), self.message)
        }
    }
}

/// Everything wrong with one configuration file, in file order.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors {
    /// The file (or source name) the errors refer to.
    pub source_name: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn new(source_name: impl Into<String>, mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|e| e.span.map(|s| (s.line, s.column)).unwrap_or((usize::MAX, 0)));
        errors.dedup();
        Self { source_name: source_name.into(), errors }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {}:{e}", self.source_name)?;
        }
        Ok(())
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(#[from] ConfigErrors),
}
