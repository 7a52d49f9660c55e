//! The templates sandboxd offers, and the files a template adds to its jails — the `mayfly`
//! template's venv — as jails mount them.
//!
//! Why a copy. A bind mount shows inside the jail, in `/proc/self/mountinfo`, the path of its
//! source relative to the source's filesystem: bind-mounting `<checkout>/tools/sandbox-venv` would
//! tell every turn where the checkout is, and from there where every other sandbox's directory is.
//! As root, sandboxd therefore copies the venv once, at start-up, onto a tmpfs of its own
//! (`<state_dir>/.templates`, bound read-only into every jail), so the jail sees only `tmpfs` and
//! `/mayfly`. Nothing depends on that path being secret — no host program takes a path from a
//! tenant — but nothing needs to tell it either. Without root there is no tmpfs to make, and the
//! venv is mounted from where it is.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// The templates sandboxd knows: E2B's public `base`, and `mayfly`, the template the repository's
/// `templates/mayfly/` builds on E2B (python3 with psycopg, Node, bash), so that tests and the
/// local stack use the names a real deployment does (docs/templates.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Template {
    Base,
    Mayfly,
}

impl Template {
    pub(crate) const ALL: [Template; 2] = [Template::Base, Template::Mayfly];

    /// `base`/`mayfly`, optionally with a `:tag`.
    pub(crate) fn parse(id: &str) -> Option<Template> {
        let name = id.split(':').next().unwrap_or_default();
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Template::Base => "base",
            Template::Mayfly => "mayfly",
        }
    }

    /// Whether the caller's team built it, as E2B tells an alias lookup: `base` is E2B's own
    /// (public, not the caller's), `mayfly` the team's own build.
    pub(crate) fn is_callers(self) -> bool {
        self == Template::Mayfly
    }
}

/// The directory under the state directory where the templates' tmpfs is mounted.
const TEMPLATES: &str = ".templates";

/// The templates' files, ready to mount.
#[derive(Debug)]
pub(crate) struct Templates {
    /// What the `mayfly` template mounts at `/opt/venv`.
    pub(crate) python_venv: Option<PathBuf>,
    /// The tmpfs holding the copies, when sandboxd made one.
    mount: Option<PathBuf>,
}

/// Whether `path` is a mount point of this mount namespace.
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts.lines().any(|line| line.split(' ').nth(4) == path.to_str())
}

fn io(what: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", what.display())
}

/// Bytes (rounded up to whole pages per file) and entries under `dir`, links not followed.
fn footprint(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += 4096;
        if kind.is_dir() {
            total += footprint(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len().div_ceil(4096) * 4096;
        }
    }
    Ok(total)
}

/// Copies `from` into `to` (which must not exist): directories, files with their modes, and
/// symbolic links as links.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    std::fs::set_permissions(to, std::fs::metadata(from)?.permissions())?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target)?;
        }
    }
    Ok(())
}

impl Templates {
    /// Readies the templates' files under `state_dir`, replacing what a sandboxd that died there
    /// left.
    pub(crate) fn prepare(python_venv: Option<&Path>, state_dir: &Path, root: bool) -> Result<Templates, String> {
        let dir = state_dir.join(TEMPLATES);
        if is_mount_point(&dir) {
            nix::mount::umount2(&dir, MntFlags::MNT_DETACH).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let _ = std::fs::remove_dir(&dir);
        let Some(venv) = python_venv else { return Ok(Templates { python_venv: None, mount: None }) };
        if !root {
            return Ok(Templates { python_venv: Some(venv.to_owned()), mount: None });
        }
        let size = footprint(venv).map_err(io(venv))? + (8 << 20);
        std::fs::create_dir(&dir).map_err(io(&dir))?;
        let opts = format!("size={size},mode=0755");
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), flags, Some(opts.as_str()))
            .map_err(|e| format!("mounting {}: {e}", dir.display()))?;
        let templates = Templates { python_venv: Some(dir.join("mayfly")), mount: Some(dir.clone()) };
        // Not remounted read-only here: a process another thread forks meanwhile may hold a copied
        // file open for a moment (EBUSY). Every jail binds it read-only, and its files are root's.
        let filled = copy_tree(venv, &dir.join("mayfly")).map_err(io(venv));
        if let Err(e) = filled {
            templates.release();
            return Err(e);
        }
        Ok(templates)
    }

    /// Unmounts and removes the copies (at shutdown).
    pub(crate) fn release(&self) {
        if let Some(dir) = &self.mount {
            if let Err(e) = nix::mount::umount2(dir, MntFlags::MNT_DETACH) {
                tracing::warn!(dir = %dir.display(), error = %e, "unmounting the templates failed");
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_files_modes_and_links() {
        let from = tempfile::tempdir().unwrap();
        std::fs::create_dir(from.path().join("bin")).unwrap();
        std::fs::write(from.path().join("bin/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(from.path().join("bin/tool"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::os::unix::fs::symlink("/usr/bin/python3", from.path().join("bin/python3")).unwrap();
        let to = tempfile::tempdir().unwrap();
        copy_tree(from.path(), &to.path().join("copy")).unwrap();
        let tool = std::fs::metadata(to.path().join("copy/bin/tool")).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&tool.permissions()) & 0o777, 0o755);
        assert_eq!(std::fs::read_link(to.path().join("copy/bin/python3")).unwrap(), Path::new("/usr/bin/python3"));
        assert!(footprint(from.path()).unwrap() >= 3 * 4096);
    }
}
