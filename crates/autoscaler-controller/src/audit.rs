//! The audit log: one JSON line per decision and action (scale-up, scale-down, VM create and delete, node
//! termination, NodeGroup spec change), saying who did what and why.
//!
//! Each line carries the SHA-256 of the previous line's record (`prev`) and of its own (`hash`), so a changed,
//! removed or reordered line breaks the chain from that line on; [`verify`] finds it. A file sink resumes
//! the chain from the file's last line after a restart.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::config::AuditSink;
use crate::error::{Error, Result};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A scale-up decision (VPSieNodes to create).
    ScaleUp,
    /// A scale-down decision (VPSieNodes to delete).
    ScaleDown,
    /// A consolidation: nodes replaced by fewer or cheaper ones.
    Consolidate,
    /// A VM create request sent to VPSie.
    VmCreate,
    /// A VM delete request sent to VPSie.
    VmDelete,
    /// A Node drained and deleted.
    NodeTermination,
    /// A NodeGroup's spec changed (a new generation was observed).
    #[serde(rename = "nodegroup_spec_change")]
    NodeGroupSpecChange,
}

impl Action {
    /// The snake_case name (also the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ScaleUp => "scale_up",
            Action::ScaleDown => "scale_down",
            Action::Consolidate => "consolidate",
            Action::VmCreate => "vm_create",
            Action::VmDelete => "vm_delete",
            Action::NodeTermination => "node_termination",
            Action::NodeGroupSpecChange => "nodegroup_spec_change",
        }
    }
}

/// One audit record, as the caller gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Who acted: this replica's identity, or the field manager that changed an object.
    pub who: String,
    /// What was done.
    pub action: Action,
    /// The object acted on (`NodeGroup/general`, `VPSieNode/general-x7k2p`, `VM/<identifier>`).
    pub object: String,
    /// Why, in a sentence.
    pub why: String,
    /// The decision's correlation id, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Dry run: decided, not done.
    #[serde(default)]
    pub dry_run: bool,
}

/// A written line: the entry, its place in the chain and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1 for the first line of a chain.
    pub seq: u64,
    /// RFC 3339 time.
    pub time: String,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
    /// Hash of the previous record ([`GENESIS`] for the first).
    pub prev: String,
}

/// A line as stored: the record plus its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Line {
    #[serde(flatten)]
    record: Record,
    hash: String,
}

fn hash(record: &Record) -> String {
    // serde_json writes struct fields in declaration order: the bytes hashed are stable.
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

enum Writer {
    Stderr,
    File(std::fs::File),
}

struct Chain {
    writer: Writer,
    seq: u64,
    prev: String,
}

/// The audit writer. Cheap to share behind an `Arc`; lines are written whole under a lock.
pub struct AuditLog {
    chain: Mutex<Chain>,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("path", &self.path).finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the sink. A file is created if missing; its chain continues from its last line.
    pub fn open(sink: &AuditSink) -> Result<Self> {
        let (writer, seq, prev, path) = match sink {
            AuditSink::Stderr => (Writer::Stderr, 0, GENESIS.to_owned(), None),
            AuditSink::File(path) => {
                let io = |source| Error::Audit { path: path.display().to_string(), source };
                let (seq, prev) = match last_line(path).map_err(io)? {
                    Some(line) => (line.record.seq, line.hash),
                    None => (0, GENESIS.to_owned()),
                };
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
                (Writer::File(file), seq, prev, Some(path.clone()))
            }
        };
        Ok(Self { chain: Mutex::new(Chain { writer, seq, prev }), path })
    }

    /// Appends one line and returns the record written.
    pub fn record(&self, entry: Entry) -> Result<Record> {
        let mut chain = self.chain.lock().unwrap_or_else(PoisonError::into_inner);
        let record =
            Record { seq: chain.seq + 1, time: jiff::Timestamp::now().to_string(), entry, prev: chain.prev.clone() };
        let line = Line { hash: hash(&record), record };
        let mut text = serde_json::to_string(&line).unwrap_or_default();
        text.push('\n');
        let written = match &mut chain.writer {
            Writer::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
            Writer::File(f) => f.write_all(text.as_bytes()).and_then(|()| f.flush()),
        };
        written.map_err(|source| Error::Audit {
            path: self.path.as_ref().map_or_else(|| "stderr".to_owned(), |p| p.display().to_string()),
            source,
        })?;
        chain.seq = line.record.seq;
        chain.prev = line.hash;
        metrics::counter!(crate::telemetry::metrics::AUDIT_RECORDS, "action" => line.record.entry.action.as_str())
            .increment(1);
        Ok(line.record)
    }
}

fn last_line(path: &Path) -> std::io::Result<Option<Line>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut last = None;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            last = Some(line);
        }
    }
    Ok(last.and_then(|l| serde_json::from_str(&l).ok()))
}

/// Why a log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read the audit log: {0}")]
    Read(String),
    /// A line is not an audit record.
    #[error("line {line}: not an audit record: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// Parser message.
        reason: String,
    },
    /// A line's content does not match its hash (it was changed).
    #[error("line {line}: content does not match its hash (changed after it was written)")]
    Tampered {
        /// 1-based line number.
        line: usize,
    },
    /// A line does not follow the one before it (a line removed, inserted or reordered).
    #[error("line {line}: does not follow line {} (a line was removed, inserted or reordered)", line - 1)]
    Broken {
        /// 1-based line number.
        line: usize,
    },
}

/// Checks a whole log: every line's hash, and that each line follows the previous one. Returns the number
/// of records. A log that starts mid-chain (rotated) is accepted from its first line on.
pub fn verify(text: &str) -> std::result::Result<usize, VerifyError> {
    let mut prev: Option<(u64, String)> = None;
    let mut count = 0;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_str(raw).map_err(|e| VerifyError::Malformed { line: line_no, reason: e.to_string() })?;
        if hash(&line.record) != line.hash {
            return Err(VerifyError::Tampered { line: line_no });
        }
        if let Some((seq, hash)) = &prev
            && (line.record.prev != *hash || line.record.seq != seq + 1)
        {
            return Err(VerifyError::Broken { line: line_no });
        }
        prev = Some((line.record.seq, line.hash));
        count += 1;
    }
    Ok(count)
}

/// [`verify`] on a file.
pub fn verify_file(path: &Path) -> std::result::Result<usize, VerifyError> {
    let text = std::fs::read_to_string(path).map_err(|e| VerifyError::Read(format!("{}: {e}", path.display())))?;
    verify(&text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            who: "vpsie-autoscaler-0".into(),
            action: if n.is_multiple_of(2) { Action::VmCreate } else { Action::ScaleUp },
            object: format!("VPSieNode/general-{n}"),
            why: format!("3 pods pending ({n})"),
            correlation_id: Some(format!("{n:016x}")),
            dry_run: false,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("audit-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        dir
    }

    #[test]
    fn action_names_on_the_wire_match_the_metric_labels() {
        for a in [
            Action::ScaleUp,
            Action::ScaleDown,
            Action::VmCreate,
            Action::VmDelete,
            Action::NodeTermination,
            Action::NodeGroupSpecChange,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(a.as_str()));
        }
    }

    #[test]
    fn a_written_log_verifies_and_resumes_after_reopen() {
        let path = temp("resume");
        let log = AuditLog::open(&AuditSink::File(path.clone())).unwrap();
        for n in 0..3 {
            log.record(entry(n)).unwrap();
        }
        drop(log);
        let log = AuditLog::open(&AuditSink::File(path.clone())).unwrap();
        let r = log.record(entry(3)).unwrap();
        assert_eq!(r.seq, 4, "the chain continues across a restart");
        assert_eq!(verify_file(&path), Ok(4));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_changed_removed_or_reordered_line_fails_at_that_line() {
        let path = temp("tamper");
        let log = AuditLog::open(&AuditSink::File(path.clone())).unwrap();
        for n in 0..5 {
            log.record(entry(n)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        let changed: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| if i == 2 { l.replace("3 pods pending", "1 pod pending") } else { (*l).to_owned() })
            .collect();
        assert_eq!(verify(&changed.join("\n")), Err(VerifyError::Tampered { line: 3 }));

        let mut removed = lines.clone();
        removed.remove(1);
        assert_eq!(verify(&removed.join("\n")), Err(VerifyError::Broken { line: 2 }));

        let mut swapped = lines.clone();
        swapped.swap(3, 4);
        assert_eq!(verify(&swapped.join("\n")), Err(VerifyError::Broken { line: 4 }));

        assert!(matches!(verify("{not json"), Err(VerifyError::Malformed { line: 1, .. })));
        assert_eq!(verify(&text), Ok(5));
        let _ = std::fs::remove_file(&path);
    }
}
