# Limits and leftovers, run as one turn's code: one file past the file-size limit, the disk
# filled, a daemon that tries to outlive the turn and as many children as fork allows, all left
# running when the code exits. Each attempt prints `escape <name>: blocked` or
# `escape <name>: ESCAPED <what it got>`.
import errno
import os
import subprocess
import time

CHUNK = b"x" * (1 << 20)


def verdict(name, got):
    print(f"escape {name}: " + (f"ESCAPED {got}" if got else "blocked"), flush=True)


def file_size():
    written = 0
    try:
        with open("/home/user/big", "wb", buffering=0) as f:
            while written < (300 << 20):
                written += f.write(CHUNK)
    except OSError as err:
        print(f"file size: stopped at {written >> 20} MiB: {err}", flush=True)
        return None if err.errno == errno.EFBIG else f"{written >> 20} MiB, then {err}"
    finally:
        os.remove("/home/user/big")
    return f"{written >> 20} MiB in one file"


def fill_disk():
    written = 0
    try:
        for i in range(64):
            with open(f"/tmp/fill{i}", "wb", buffering=0) as f:
                for _ in range(64):
                    written += f.write(CHUNK)
    except OSError as err:
        print(f"disk: full after {written >> 20} MiB: {err}", flush=True)
        return None if err.errno == errno.ENOSPC and written <= (600 << 20) else f"{written >> 20} MiB, then {err}"
    return f"{written >> 20} MiB written"


def quiet():
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)


def daemonise():
    subprocess.Popen(["setsid", "sleep", "601"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    subprocess.Popen("nohup sleep 602 >/dev/null 2>&1 &", shell=True)
    # No environment to be recognised by: only the sandbox's cgroup still names it.
    subprocess.Popen("env -i setsid sleep 605 >/dev/null 2>&1 &", shell=True)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            quiet()
            time.sleep(603)
        os._exit(0)
    os.wait()
    return None


def fork_until_refused():
    children = 0
    try:
        while children < 5000:
            if os.fork() == 0:
                quiet()
                time.sleep(604)
                os._exit(0)
            children += 1
    except OSError as err:
        print(f"fork: refused after {children} children: {err}", flush=True)
        return None if children <= 256 else f"{children} children"
    return f"{children} children"


verdict("file_size_limit", file_size())
if os.environ.get("FILL_DISK"):
    verdict("fill_disk", fill_disk())
verdict("daemonise", daemonise())
verdict("fork_count", fork_until_refused())
print("leaving", flush=True)
