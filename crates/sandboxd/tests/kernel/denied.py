# Calls each system call a jailed process must not make, with arguments that would otherwise
# succeed or fail for another reason, and prints one line per call: `<name> <errno name or ok>`.
import ctypes, errno, os, platform, signal, time

NUMBERS = {
    "x86_64": dict(keyctl=250, add_key=248, request_key=249, bpf=321, userfaultfd=323, perf_event_open=298,
                   kexec_load=246, kexec_file_load=320, mount=165, umount2=166, pivot_root=155, setns=308,
                   unshare=272, clone=56, clone3=435, open_by_handle_at=304, ptrace=101, personality=135,
                   io_uring_setup=425, socket=41, mbind=237),
    "aarch64": dict(keyctl=219, add_key=217, request_key=218, bpf=280, userfaultfd=282, perf_event_open=241,
                    kexec_load=104, kexec_file_load=294, mount=40, umount2=39, pivot_root=41, setns=268,
                    unshare=97, clone=220, clone3=435, open_by_handle_at=265, ptrace=117, personality=92,
                    io_uring_setup=425, socket=198, mbind=235),
}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, CLONE_NEWNET, SIGCHLD = 0x10000000, 0x40000000, 17

def call(name, *args):
    ctypes.set_errno(0)
    ret = libc.syscall(NUMBERS[name.split("_af_")[0]], *args)
    if ret == 0 and name == "clone":
        os._exit(0)  # the child of a clone that worked
    if ret >= 0:
        if name == "clone":
            os.waitpid(ret, 0)
        return "ok"
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

buf = ctypes.create_string_buffer(256)
c = ctypes.c_char_p
sibling = os.fork()
if sibling == 0:
    time.sleep(30)
    os._exit(0)
netns = os.open("/proc/self/ns/net", os.O_RDONLY)
results = {
    "keyctl": call("keyctl", 0, ctypes.c_long(-3), 0),
    "add_key": call("add_key", c(b"user"), c(b"mayfly"), c(b"x"), 1, ctypes.c_long(-2)),
    "request_key": call("request_key", c(b"user"), c(b"mayfly-none"), None, 0),
    "bpf": call("bpf", 0, buf, 72),
    "userfaultfd": call("userfaultfd", 1),
    "perf_event_open": call("perf_event_open", buf, 0, ctypes.c_long(-1), ctypes.c_long(-1), 0),
    "kexec_load": call("kexec_load", 0, 0, None, 0),
    "kexec_file_load": call("kexec_file_load", ctypes.c_long(-1), ctypes.c_long(-1), 0, None, 0),
    "mount": call("mount", c(b"none"), c(b"/tmp"), c(b"tmpfs"), 0, None),
    "umount2": call("umount2", c(b"/tmp"), 0),
    "pivot_root": call("pivot_root", c(b"/tmp"), c(b"/tmp")),
    "setns": call("setns", netns, 0),
    "unshare": call("unshare", CLONE_NEWUSER),
    "clone": call("clone", CLONE_NEWUSER | SIGCHLD, None, None, None, None),
    "clone3": call("clone3", None, 0),
    "open_by_handle_at": call("open_by_handle_at", ctypes.c_long(-100), buf, 0),
    "ptrace": call("ptrace", 16, sibling, None, None),
    "personality": call("personality", 0x0040000),
    "io_uring_setup": call("io_uring_setup", 1, buf),
    "socket_af_alg": call("socket", 38, 5, 0),
    "socket_af_vsock": call("socket", 40, 1, 0),
    "mbind": call("mbind", buf, 4096, 1, None, 0, 0),
}
os.kill(sibling, signal.SIGKILL)
os.waitpid(sibling, 0)
for name, result in results.items():
    print(name, result)
