//! How a jailed process enters its sandbox on the host side, in the forked child between `fork`
//! and the exec of `bwrap`: it joins the sandbox's cgroups and network namespace, takes the
//! sandbox's limits, and gives up root (no groups, no capabilities, the sandbox's own host uid).
//!
//! Why here and not as programs. These steps were once a chain of host programs, each exec'ing
//! the next (`sh` writing the cgroups, `nsenter`, `prlimit`, `setpriv`); each exec cost about a
//! millisecond of every process start of every sandbox, and each was one more root program a
//! tenant's input must never steer. Done in the child they cost a few system calls, and the only
//! program that runs is `bwrap` itself.
//!
//! The rule for this file: [`Entry::enter`] runs in a child forked from a multi-threaded process,
//! where only async-signal-safe calls are allowed. So everything that allocates or may take a lock
//! — opening the cgroup files, duplicating the namespace's handle, choosing the limits — happens
//! in [`Entry::prepare`], in sandboxd, and the child makes only raw system calls (`rustix`) on
//! what was prepared. The descriptors are close-on-exec: none of them reaches bwrap.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::process::{Gid, Resource, Rlimit, Uid};
use rustix::thread::{CapabilitySet, CapabilitySets, LinkNameSpaceType};

use super::{Jail, JailLimits};

/// What a child needs to enter one sandbox.
pub(super) struct Entry {
    /// The file of each of the sandbox's groups that a process joins by, open for writing.
    cgroups: Vec<OwnedFd>,
    /// The sandbox's network namespace.
    net: Option<OwnedFd>,
    limits: [(Resource, u64); 5],
    /// The host uid and gid the jail runs as; `None` when sandboxd is not root.
    host_id: Option<(Uid, Gid)>,
}

impl Entry {
    pub(super) fn prepare(jail: &Jail) -> io::Result<Entry> {
        let mut cgroups = Vec::new();
        if let Some(cgroup) = &jail.cgroup {
            for file in cgroup.join_files() {
                cgroups.push(OpenOptions::new().write(true).open(file)?.into());
            }
        }
        let net = jail.net.as_ref().map(|net| net.handle().try_clone().map(OwnedFd::from)).transpose()?;
        let host_id = jail.host_uid.map(|id| (Uid::from_raw(id), Gid::from_raw(id)));
        Ok(Entry { cgroups, net, limits: limits(&jail.limits), host_id })
    }

    /// Runs in the forked child (see the module's rule): nothing here allocates.
    pub(super) fn enter(&self) -> io::Result<()> {
        // "0" is the writing process: the whole jail is inside the cgroups from its first
        // instruction.
        for procs in &self.cgroups {
            rustix::io::write(procs, b"0")?;
        }
        if let Some(net) = &self.net {
            rustix::thread::move_into_link_name_space(net.as_fd(), Some(LinkNameSpaceType::Network))?;
        }
        // Soft and hard alike, set while still root, so nothing in the jail can raise them.
        for (resource, value) in self.limits {
            rustix::process::setrlimit(resource, Rlimit { current: Some(value), maximum: Some(value) })?;
        }
        if let Some((uid, gid)) = self.host_id {
            drop_root(uid, gid)?;
        }
        Ok(())
    }
}

fn limits(l: &JailLimits) -> [(Resource, u64); 5] {
    [
        (Resource::Nproc, l.max_processes),
        (Resource::As, l.address_space_bytes),
        (Resource::Fsize, l.file_size_bytes),
        (Resource::Cpu, l.cpu_seconds),
        (Resource::Core, 0),
    ]
}

/// From root to `uid` and `gid`, keeping nothing: the bounding set emptied first (that needs the
/// capability it removes last), then no supplementary groups, the gid and the uid (real, effective
/// and saved alike), and the inheritable set — which a change of uid leaves alone — cleared.
fn drop_root(uid: Uid, gid: Gid) -> io::Result<()> {
    for cap in 0..64 {
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << cap)) {
            Ok(()) => {}
            // Past the kernel's last capability.
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => return Err(e.into()),
        }
    }
    rustix::thread::set_thread_groups(&[])?;
    rustix::thread::set_thread_res_gid(gid, gid, gid)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid)?;
    let none = CapabilitySet::empty();
    rustix::thread::set_capabilities(None, CapabilitySets { effective: none, permitted: none, inheritable: none })?;
    Ok(())
}
