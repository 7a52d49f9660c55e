//! Entries and file metadata as envd reports them, from `fsinfo.py` run inside the jail.
//!
//! Why Python: envd's entry is `lstat` plus, for a link, the fully resolved target and that
//! target's type and mode, plus the file's `user.e2b.*` extended attributes
//! (docs/protocols/envd-rules.md, "Entries" and "File metadata"). Neither `find` nor the shell can
//! read extended attributes, and `/usr/bin/python3` is in every template; `-I -S` keeps the
//! sandbox's environment and files out of the interpreter's start-up.

use axum::body::Bytes;
use mayfly_core::wire::e2b::{EntryInfo, RpcError, StringMap};

use super::helper::{self, Helper};
use crate::jail::JailUser;
use crate::sandbox::Sandbox;

const SCRIPT: &str = include_str!("fsinfo.py");
const PYTHON: &str = "/usr/bin/python3";

/// One entry as the script reports it.
#[derive(Debug, serde::Deserialize)]
pub(super) struct RawEntry {
    name: String,
    path: String,
    kind: String,
    size: i64,
    mode: u32,
    raw_mode: u32,
    owner: String,
    group: String,
    mtime_ns: i128,
    target: Option<String>,
    metadata: Option<StringMap>,
}

/// Runs one operation of the script; its stdout is JSON unless it exits non-zero.
pub(super) async fn run(
    sb: &Sandbox,
    user: JailUser,
    op: &str,
    args: &[&str],
    input: Option<Bytes>,
) -> Result<Helper, RpcError> {
    let mut argv: Vec<String> = [PYTHON, "-I", "-S", "-c", SCRIPT, op].iter().map(|s| (*s).to_owned()).collect();
    argv.extend(args.iter().map(|s| (*s).to_owned()));
    helper::run(sb, user, argv, input).await
}

/// The script's JSON answer.
pub(super) fn parse<T: serde::de::DeserializeOwned>(out: &Helper) -> Result<T, RpcError> {
    serde_json::from_slice(&out.stdout).map_err(|e| RpcError::new("internal", format!("reading file information: {e}")))
}

impl RawEntry {
    pub(super) fn into_entry(self) -> EntryInfo {
        let kind = match self.kind.as_str() {
            "file" => "FILE_TYPE_FILE",
            "dir" => "FILE_TYPE_DIRECTORY",
            "symlink" => "FILE_TYPE_SYMLINK",
            _ => "FILE_TYPE_UNSPECIFIED",
        };
        EntryInfo {
            name: self.name,
            kind: kind.into(),
            path: self.path,
            size: self.size.to_string(),
            mode: self.mode,
            permissions: go_mode_string(self.raw_mode),
            owner: self.owner,
            group: self.group,
            modified_time: rfc3339_nanos(self.mtime_ns),
            symlink_target: self.target,
            metadata: self.metadata,
        }
    }
}

/// A protobuf `Timestamp` as protojson writes it: RFC 3339 in UTC with nanoseconds.
fn rfc3339_nanos(ns: i128) -> String {
    let ns = u64::try_from(ns.max(0)).unwrap_or(u64::MAX);
    humantime::format_rfc3339_nanos(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns)).to_string()
}

/// Go's `os.FileMode.String()` of an `lstat` mode, which envd sends as `permissions`: one letter
/// per type or special bit in Go's order (`dalTLDpSugct?`), `-` when there is none, then `rwx`s.
pub(super) fn go_mode_string(raw: u32) -> String {
    let fmt = raw & libc::S_IFMT;
    let flags = [
        ('d', fmt == libc::S_IFDIR),
        ('L', fmt == libc::S_IFLNK),
        ('D', fmt == libc::S_IFBLK || fmt == libc::S_IFCHR),
        ('p', fmt == libc::S_IFIFO),
        ('S', fmt == libc::S_IFSOCK),
        ('u', raw & libc::S_ISUID != 0),
        ('g', raw & libc::S_ISGID != 0),
        ('c', fmt == libc::S_IFCHR),
        ('t', raw & libc::S_ISVTX != 0),
    ];
    let mut s: String = flags.iter().filter(|(_, on)| *on).map(|(c, _)| *c).collect();
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if raw & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_are_gos() {
        assert_eq!(go_mode_string(libc::S_IFREG | 0o644), "-rw-r--r--");
        assert_eq!(go_mode_string(libc::S_IFDIR | 0o755), "drwxr-xr-x");
        assert_eq!(go_mode_string(libc::S_IFLNK | 0o777), "Lrwxrwxrwx");
        assert_eq!(go_mode_string(libc::S_IFDIR | libc::S_ISVTX | 0o777), "dtrwxrwxrwx");
        assert_eq!(go_mode_string(libc::S_IFCHR | 0o666), "Dcrw-rw-rw-");
        assert_eq!(go_mode_string(libc::S_IFREG | libc::S_ISUID | 0o755), "urwxr-xr-x");
        assert_eq!(go_mode_string(libc::S_IFIFO | 0o600), "prw-------");
    }

    #[test]
    fn entries_convert() {
        let raw: RawEntry = serde_json::from_str(
            r#"{"name":"l","path":"/home/user/l","kind":"file","size":8,"mode":420,"raw_mode":41471,
                "owner":"user","group":"user","mtime_ns":1700000000500000000,"target":"/home/user/a.txt",
                "metadata":{"author":"mish"}}"#,
        )
        .unwrap();
        let e = raw.into_entry();
        assert_eq!(e.kind, "FILE_TYPE_FILE");
        assert_eq!(e.permissions, "Lrwxrwxrwx");
        assert_eq!(e.mode, 0o644);
        assert_eq!(e.size, "8");
        assert_eq!(e.modified_time, "2023-11-14T22:13:20.500000000Z");
        assert_eq!(e.symlink_target.as_deref(), Some("/home/user/a.txt"));
        assert_eq!(e.metadata.unwrap()["author"], "mish");
    }
}
