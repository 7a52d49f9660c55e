//! The system calls no jailed process may make, as the seccomp programs bwrap installs right
//! before it executes the sandbox's command (`--add-seccomp-fd`; see `docs/security.md`).
//!
//! What is denied is what container runtimes deny a process without capabilities: the kernel's
//! key store, eBPF, userfaultfd, perf events, kexec and modules, every way to mount or to enter or
//! make namespaces (`unshare`, `setns`, `clone` with a `CLONE_NEW*` flag), handles to files by
//! inode, attaching to another process with `ptrace`, personalities other than the plain ones,
//! io_uring (whose requests bypass this filter), NUMA memory placement, the `AF_ALG` and `AF_VSOCK`
//! socket families, the clock, swap, reboot and accounting. Most of
//! these fail without capabilities anyway; the filter makes that true on any kernel and for the
//! namespace root a jailed process is.
//!
//! Two programs, because one seccompiler program has one action on a match: denied calls answer
//! `EPERM`, and `clone3` answers `ENOSYS` — its flags sit behind a pointer the filter cannot read,
//! and `ENOSYS` makes the C library fall back to `clone`, whose flags it can. Both programs kill a
//! process that calls with another architecture's numbering (i386 `int 0x80`), and on x86_64 both
//! also refuse x32 numbers, which share x86_64's architecture tag.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// The two compiled programs, as the bytes bwrap reads from a descriptor (native `sock_filter`s).
#[derive(Debug, Clone)]
pub(crate) struct SeccompPrograms {
    pub(crate) denied: Vec<u8>,
    pub(crate) not_implemented: Vec<u8>,
}

/// Calls denied outright, on every architecture we build for.
const DENIED: &[i64] = &[
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_open_by_handle_at,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_vhangup,
    libc::SYS_fanotify_init,
    libc::SYS_lookup_dcookie,
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    // NUMA placement of memory: moving another process's pages, or binding to nodes others use.
    libc::SYS_mbind,
    libc::SYS_set_mempolicy,
    libc::SYS_migrate_pages,
    libc::SYS_move_pages,
];

/// x86_64's calls that other architectures do not have.
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[i64] = &[libc::SYS_iopl, libc::SYS_ioperm, libc::SYS_uselib, libc::SYS_ustat, libc::SYS_sysfs];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_ARCH: &[i64] = &[];

/// The flags of `clone` that make a namespace.
const NAMESPACE_FLAGS: &[i32] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// The personalities a program may ask for: Linux itself (0), `UNAME26` (8), `PER_LINUX32`
/// (0x20000) and the two together, and the query (0xffffffff). Anything else — notably
/// `ADDR_NO_RANDOMIZE` — is denied.
const PERSONALITIES: &[u64] = &[0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Socket families with a large kernel surface and no use in a sandbox: the kernel's crypto API
/// (`AF_ALG`) and host–guest sockets (`AF_VSOCK`).
const DENIED_SOCKET_FAMILIES: &[u64] = &[libc::AF_ALG as u64, libc::AF_VSOCK as u64];

/// `ptrace` requests that attach to a process that did not ask to be traced.
const PTRACE_ATTACHES: &[u64] = &[16 /* PTRACE_ATTACH */, 0x4206 /* PTRACE_SEIZE */];

/// The architecture sandboxd runs on.
fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("no seccomp filter for this architecture: {e}"))
}

fn condition(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(|e| e.to_string())
}

/// A condition on an argument the kernel reads as a 32-bit `int`: only its low half counts.
fn condition_dword(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| e.to_string())
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

/// The rules of the `EPERM` program: syscall number → when it is denied (no rules: always).
fn denied_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().chain(DENIED_ARCH).map(|&nr| (nr, Vec::new())).collect();
    // clone: any namespace flag in its flags argument (the first on the architectures we build for).
    let clone = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| rule(vec![condition(0, SeccompCmpOp::MaskedEq(flag as u64), flag as u64)?]))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone);
    // personality: every value but the allowed ones; the conditions of one rule all have to hold.
    let other_personality =
        PERSONALITIES.iter().map(|&p| condition_dword(0, SeccompCmpOp::Ne, p)).collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_personality, vec![rule(other_personality)?]);
    let attaches =
        PTRACE_ATTACHES.iter().map(|&r| rule(vec![condition(0, SeccompCmpOp::Eq, r)?])).collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_ptrace, attaches);
    let families = DENIED_SOCKET_FAMILIES
        .iter()
        .map(|&family| rule(vec![condition_dword(0, SeccompCmpOp::Eq, family)?]))
        .collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_socket, families);
    Ok(rules)
}

/// Compiles both programs for this architecture.
pub(crate) fn programs() -> Result<SeccompPrograms, String> {
    let compile = |rules, action| -> Result<BpfProgram, String> {
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch()?).map_err(|e| e.to_string())?;
        filter.try_into().map_err(|e: seccompiler::BackendError| e.to_string())
    };
    let denied = compile(denied_rules()?, SeccompAction::Errno(libc::EPERM as u32))?;
    let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let not_implemented = compile(clone3, SeccompAction::Errno(libc::ENOSYS as u32))?;
    // Both guarded: each program must stand on its own, whatever the other does.
    Ok(SeccompPrograms { denied: to_bytes(&x32_guard(denied)), not_implemented: to_bytes(&x32_guard(not_implemented)) })
}

/// On x86_64, a program that answers `ENOSYS` to every x32 call before anything else.
#[cfg(target_arch = "x86_64")]
fn x32_guard(program: BpfProgram) -> BpfProgram {
    use seccompiler::sock_filter;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    // The filter's input starts with the call's number; these jumps are relative, so the program
    // that follows keeps its own.
    let mut guarded = vec![
        sock_filter { code: 0x20, jt: 0, jf: 0, k: 0 },               // ld [nr]
        sock_filter { code: 0x35, jt: 0, jf: 1, k: X32_SYSCALL_BIT }, // jge: x32 ? next : skip one
        sock_filter { code: 0x06, jt: 0, jf: 0, k: RET_ERRNO | libc::ENOSYS as u32 }, // ret ENOSYS
    ];
    guarded.extend(program);
    guarded
}

#[cfg(not(target_arch = "x86_64"))]
fn x32_guard(program: BpfProgram) -> BpfProgram {
    program
}

/// The program as bwrap reads it: each instruction's fields in native byte order.
fn to_bytes(program: &BpfProgram) -> Vec<u8> {
    program
        .iter()
        .flat_map(|i| {
            let mut bytes = [0u8; 8];
            bytes[..2].copy_from_slice(&i.code.to_ne_bytes());
            bytes[2] = i.jt;
            bytes[3] = i.jf;
            bytes[4..].copy_from_slice(&i.k.to_ne_bytes());
            bytes
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_programs_compile_to_whole_instructions() {
        let programs = programs().unwrap();
        for bytes in [&programs.denied, &programs.not_implemented] {
            assert!(!bytes.is_empty());
            assert_eq!(bytes.len() % 8, 0, "bwrap refuses a program that is not whole sock_filters");
            // A seccomp program is at most 4096 instructions.
            assert!(bytes.len() / 8 <= 4096);
        }
    }

    #[test]
    fn every_denied_call_has_a_rule_and_clone3_is_not_among_them() {
        let rules = denied_rules().unwrap();
        for nr in DENIED.iter().chain(DENIED_ARCH).chain([&libc::SYS_clone, &libc::SYS_personality, &libc::SYS_ptrace])
        {
            assert!(rules.contains_key(nr), "no rule for syscall {nr}");
        }
        assert!(!rules.contains_key(&libc::SYS_clone3), "clone3 answers ENOSYS, not EPERM");
        assert_eq!(rules[&libc::SYS_clone].len(), NAMESPACE_FLAGS.len());
    }
}
