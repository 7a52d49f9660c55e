//! Uploads written straight into the sandbox's directory by sandboxd, with no process: the fast
//! path of `files.rs`, as safe as the jailed helper it stands before (docs/security.md, "Files").
//!
//! - Only paths under the jail's `/home/user` and `/tmp` (the sandbox's `home/` and `tmp/`) made
//!   of plain names are taken. Anything else (`..`, `/root`, a read-only system path) goes to the
//!   helper, which answers as it always has.
//! - Each step opens one name from the descriptor of the directory before it with `openat2` and
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`. A link
//!   that jailed code planted, or swaps in between two steps, is refused by the kernel, never
//!   followed: the upload then goes to the helper, which follows it inside the jail, where it can
//!   lead nowhere but the sandbox.
//! - The opens and directory creations run on one thread whose filesystem uid and gid are the
//!   sandbox's host uid (`setfsuid`), so the kernel checks them as it checks the jail's own and
//!   what they make belongs to the sandbox. A refusal (a read-only file, a FIFO, a device) goes
//!   to the helper too.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

use mayfly_core::wire::e2b::StringMap;
use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode};
use nix::unistd::{setfsgid, setfsuid, unlinkat, Gid, Uid, UnlinkatFlags};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::jail::FileRoot;

/// envd's metadata lives in `user.e2b.*` extended attributes (docs/protocols/envd-rules.md).
pub(super) const METADATA_PREFIX: &str = "user.e2b.";

/// The longest path the kernel takes (`PATH_MAX`), and so the helper's `mkdir -p`.
const PATH_MAX: usize = 4096;

/// What opening an upload's path found.
#[derive(Debug)]
pub(super) enum Opened {
    /// A regular file of the sandbox, open for writing and empty.
    File(Target),
    /// The path names a directory.
    IsDir,
    /// Not a path this way takes: the jailed helper does.
    Jailed,
}

/// An upload's file, and where it is, to take it back if the upload fails.
#[derive(Debug)]
pub(super) struct Target {
    file: File,
    parent: OwnedFd,
    name: String,
    host_uid: Option<u32>,
    /// Whether the file was there before (its old metadata must then go).
    pub(super) existed: bool,
}

/// Why writing a file stopped.
#[derive(Debug)]
pub(super) enum WriteError {
    /// The client's body could not be read.
    Body(std::io::Error),
    /// The body is longer than the largest file.
    TooLarge,
    /// The sandbox's disk is full.
    NoSpace,
    Io(std::io::Error),
}

/// Opens (creating it and its directories as needed) the regular file at the jail's `path`.
pub(super) async fn open(root: FileRoot, path: &str) -> Opened {
    let Some((base, names)) = split(path) else { return Opened::Jailed };
    tokio::task::spawn_blocking(move || open_as_sandbox(&root, base, &names)).await.unwrap_or(Opened::Jailed)
}

/// The sandbox directory's subdirectory and the plain names under it that `path` is, if it is
/// such a path.
fn split(path: &str) -> Option<(&'static str, Vec<String>)> {
    let (base, rest) = if let Some(rest) = path.strip_prefix("/home/user/") {
        ("home", rest)
    } else {
        ("tmp", path.strip_prefix("/tmp/")?)
    };
    // As long a path as the kernel resolves in one go: each name costs a step, and its directory.
    if rest.ends_with('/') || path.len() > PATH_MAX {
        return None;
    }
    let names: Vec<String> = rest.split('/').filter(|n| !n.is_empty()).map(str::to_owned).collect();
    let plain = !names.is_empty() && names.iter().all(|n| n != "." && n != "..");
    plain.then_some((base, names))
}

/// This thread's filesystem identity, the sandbox's uid until dropped.
struct AsSandbox {
    uid: Uid,
    gid: Gid,
}

impl AsSandbox {
    fn enter(uid: u32) -> Option<AsSandbox> {
        let guard = AsSandbox { gid: setfsgid(Gid::from_raw(uid)), uid: setfsuid(Uid::from_raw(uid)) };
        // Both calls answer the previous identity, never an error: asking again says if they took.
        let took =
            setfsgid(Gid::from_raw(uid)) == Gid::from_raw(uid) && setfsuid(Uid::from_raw(uid)) == Uid::from_raw(uid);
        took.then_some(guard)
    }
}

impl Drop for AsSandbox {
    fn drop(&mut self) {
        setfsuid(self.uid);
        setfsgid(self.gid);
    }
}

/// Runs `f` on this thread as the sandbox (see [`AsSandbox`]); `None` if the identity did not take.
fn as_sandbox<T>(host_uid: Option<u32>, f: impl FnOnce() -> T) -> Option<T> {
    let _identity = match host_uid {
        Some(uid) => Some(AsSandbox::enter(uid)?),
        None => None,
    };
    Some(f())
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    )
}

fn open_as_sandbox(root: &FileRoot, base: &str, names: &[String]) -> Opened {
    as_sandbox(root.host_uid, || open_walk(root, base, names)).unwrap_or(Opened::Jailed)
}

fn open_walk(root: &FileRoot, base: &str, names: &[String]) -> Opened {
    // The sandbox's directory and its `home/` and `tmp/` are sandboxd's making: no jail names them.
    let top = nix::fcntl::open(
        &root.dir.join(base),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let Ok(mut dir) = top else { return Opened::Jailed };
    let Some((name, parents)) = names.split_last() else { return Opened::Jailed };
    for parent in parents {
        match subdirectory(&dir, parent) {
            Ok(next) => dir = next,
            Err(_) => return Opened::Jailed,
        }
    }
    // A name made by another writer between the two opens is opened again, a few times at most.
    for _ in 0..3 {
        let flags = OFlag::O_WRONLY | OFlag::O_TRUNC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        match openat2(&dir, name.as_str(), how(flags)) {
            Ok(fd) => return regular(fd, dir, name, root.host_uid, true),
            Err(Errno::EISDIR) => return Opened::IsDir,
            Err(Errno::ENOENT) => {}
            Err(_) => return Opened::Jailed,
        }
        let create = how(flags | OFlag::O_CREAT | OFlag::O_EXCL).mode(Mode::from_bits_truncate(0o644));
        match openat2(&dir, name.as_str(), create) {
            Ok(fd) => return regular(fd, dir, name, root.host_uid, false),
            Err(Errno::EEXIST) => {}
            Err(_) => return Opened::Jailed,
        }
    }
    Opened::Jailed
}

/// The directory `name` in `dir`, made if it is not there (as `mkdir -p` would).
fn subdirectory(dir: &OwnedFd, name: &str) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match openat2(dir, name, how(flags)) {
        Err(Errno::ENOENT) => {
            match mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            openat2(dir, name, how(flags))
        }
        opened => opened,
    }
}

/// The opened file if it is a regular one; a FIFO or device is the helper's to refuse.
fn regular(fd: OwnedFd, parent: OwnedFd, name: &str, host_uid: Option<u32>, existed: bool) -> Opened {
    let file = File::from(fd);
    match file.metadata() {
        Ok(meta) if meta.file_type().is_file() => {
            Opened::File(Target { file, parent, name: name.to_owned(), host_uid, existed })
        }
        _ => Opened::Jailed,
    }
}

impl Target {
    /// Writes what `data` reads into the file, refusing more than `max` bytes, and stopping once
    /// `gone` says the sandbox is being torn down: a slow upload must not keep its files alive.
    pub(super) async fn write(
        &self,
        mut data: impl AsyncRead + Unpin,
        max: u64,
        gone: impl Fn() -> bool,
    ) -> Result<(), WriteError> {
        let mut file = tokio::fs::File::from_std(self.file.try_clone().map_err(WriteError::Io)?);
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let read = data.read(&mut buf).await.map_err(WriteError::Body)?;
            if read == 0 {
                break;
            }
            total += read as u64;
            if total > max {
                return Err(WriteError::TooLarge);
            }
            if gone() {
                return Err(WriteError::Io(std::io::Error::other("the sandbox is gone")));
            }
            file.write_all(&buf[..read]).await.map_err(disk_error)?;
        }
        file.flush().await.map_err(disk_error)
    }

    /// Takes the file back after a failed upload, if its name still is this file: jailed code
    /// may have put something else there since. As the sandbox, like every other step.
    pub(super) async fn remove(self) {
        let _ = tokio::task::spawn_blocking(move || as_sandbox(self.host_uid, || self.unlink())).await;
    }

    fn unlink(&self) {
        let (Ok(ours), Ok(there)) =
            (self.file.metadata(), fstatat(&self.parent, self.name.as_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW))
        else {
            return;
        };
        if ours.ino() == there.st_ino && ours.dev() == there.st_dev {
            let _ = unlinkat(&self.parent, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }

    /// Replaces the file's metadata with `wanted` and answers what it now holds; `Ok(None)` is
    /// none. A file system without extended attributes keeps the file without, as envd does.
    pub(super) async fn set_metadata(&self, wanted: StringMap) -> Result<Option<StringMap>, WriteError> {
        let file = self.file.try_clone().map_err(WriteError::Io)?;
        let host_uid = self.host_uid;
        let set = move || -> Result<Option<StringMap>, WriteError> {
            replace_metadata(&file, &wanted).map_err(disk_error)?;
            Ok(read_metadata(&file))
        };
        let unknown = || WriteError::Io(std::io::Error::other("the sandbox's identity did not take"));
        tokio::task::spawn_blocking(move || as_sandbox(host_uid, set))
            .await
            .map_err(|e| WriteError::Io(std::io::Error::other(e)))?
            .ok_or_else(unknown)?
    }
}

fn replace_metadata(file: &File, wanted: &StringMap) -> std::io::Result<()> {
    use xattr::FileExt;
    let result = (|| {
        for name in file.list_xattr()? {
            let Some(key) = name.to_str().and_then(|n| n.strip_prefix(METADATA_PREFIX)) else { continue };
            if !wanted.contains_key(key) {
                file.remove_xattr(&name)?;
            }
        }
        wanted.iter().try_for_each(|(key, value)| file.set_xattr(format!("{METADATA_PREFIX}{key}"), value.as_bytes()))
    })();
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
        other => other,
    }
}

/// The file's metadata, best effort as envd's: what cannot be read is not there.
fn read_metadata(file: &File) -> Option<StringMap> {
    use xattr::FileExt;
    let printable = |s: &str| s.chars().all(|c| !c.is_control());
    let found: StringMap = file
        .list_xattr()
        .ok()?
        .filter_map(|name| {
            let key = name.to_str()?.strip_prefix(METADATA_PREFIX)?.to_owned();
            let value = String::from_utf8(file.get_xattr(&name).ok()??).ok()?;
            printable(&key).then_some((key, value))
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

fn disk_error(e: std::io::Error) -> WriteError {
    match e.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG) => WriteError::NoSpace,
        _ => WriteError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_under_home_and_tmp_are_taken() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(split("/home/user/a/b.py"), Some(("home", names(&["a", "b.py"]))));
        assert_eq!(split("/home/user//a"), Some(("home", names(&["a"]))));
        assert_eq!(split("/tmp/x"), Some(("tmp", names(&["x"]))));
        for path in ["/home/user/../../etc/x", "/home/user/a/./b", "/root/x", "/etc/passwd", "/home/user/", "/tmp/a/"] {
            assert_eq!(split(path), None, "{path}");
        }
        assert_eq!(split("/home/userx/a"), None);
        // Each name is a directory sandboxd makes: no more of them than the kernel resolves at once.
        let deep = format!("/home/user/{}x", "a/".repeat(2100));
        assert_eq!(split(&deep), None);
        assert!(split(&format!("/home/user/{}x", "a/".repeat(2000))).is_some());
    }

    fn root(dir: &std::path::Path) -> FileRoot {
        std::fs::create_dir_all(dir.join("home")).unwrap();
        FileRoot { dir: dir.to_owned(), host_uid: None }
    }

    #[test]
    fn a_link_anywhere_on_the_path_is_never_followed() {
        let sandbox = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = root(sandbox.path());
        std::os::unix::fs::symlink(outside.path(), sandbox.path().join("home/d")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("f"), sandbox.path().join("home/f")).unwrap();
        for names in [&["d", "x"][..], &["d", "sub", "x"], &["f"]] {
            let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
            assert!(matches!(open_as_sandbox(&root, "home", &names), Opened::Jailed), "{names:?}");
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_new_file_and_its_directories_are_made_and_an_old_one_emptied() {
        let sandbox = tempfile::tempdir().unwrap();
        let root = root(sandbox.path());
        let names = vec!["a".to_owned(), "b".to_owned(), "c.txt".to_owned()];
        let Opened::File(target) = open_as_sandbox(&root, "home", &names) else { panic!("not opened") };
        assert!(!target.existed);
        std::io::Write::write_all(&mut &target.file, b"hello").unwrap();
        let Opened::File(again) = open_as_sandbox(&root, "home", &names) else { panic!("not opened") };
        assert!(again.existed);
        assert_eq!(std::fs::read(sandbox.path().join("home/a/b/c.txt")).unwrap(), b"");
        again.unlink();
        assert!(!sandbox.path().join("home/a/b/c.txt").exists());
        let dir = vec!["a".to_owned()];
        assert!(matches!(open_as_sandbox(&root, "home", &dir), Opened::IsDir));
    }
}
