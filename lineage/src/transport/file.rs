//! One JSON line per event, appended to a file (flushed per event, so a
//! reader tailing the file sees each event as soon as it is delivered).

use std::io::Write;
use std::path::PathBuf;

use parking_lot::Mutex;

use crate::emitter::{Transport, TransportError};
use crate::model::RunEvent;

pub struct FileTransport {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl FileTransport {
    /// Opens lazily on first send, creating missing parent directories.
    pub fn new(path: impl Into<PathBuf>) -> FileTransport {
        FileTransport { path: path.into(), file: Mutex::new(None) }
    }
}

#[async_trait::async_trait]
impl Transport for FileTransport {
    fn name(&self) -> &str {
        "file"
    }

    async fn send(&self, event: &RunEvent) -> Result<(), TransportError> {
        let mut line = serde_json::to_vec(event).map_err(|e| TransportError::Permanent(e.to_string()))?;
        line.push(b'\n');
        let mut guard = self.file.lock();
        if guard.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| TransportError::Transient(format!("{}: {e}", dir.display())))?;
            }
            let f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(|e| TransportError::Transient(format!("{}: {e}", self.path.display())))?;
            *guard = Some(f);
        }
        let f = guard.as_mut().expect("opened above");
        // One write per line: with O_APPEND, lines of several processes
        // sharing the file do not interleave.
        if let Err(e) = f.write_all(&line).and_then(|_| f.flush()) {
            *guard = None;
            return Err(TransportError::Transient(format!("{}: {e}", self.path.display())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventType, Facets, Job, Run};

    #[tokio::test]
    async fn appends_one_parseable_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/lineage.jsonl");
        let t = FileTransport::new(&path);
        for ty in [EventType::Start, EventType::Complete] {
            let e = RunEvent::new(ty, chrono::Utc::now(), Run { run_id: Run::new_id(), facets: Facets::new() }, Job { namespace: "n".into(), name: "j".into(), facets: Facets::new() });
            t.send(&e).await.unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let events: Vec<RunEvent> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.iter().map(|e| e.event_type).collect::<Vec<_>>(), vec![EventType::Start, EventType::Complete]);
    }
}
