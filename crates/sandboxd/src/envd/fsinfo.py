# Runs inside a sandbox's jail as the requesting user (never on the host), under `python3 -I -S`.
# It says what envd's EntryInfo says about paths, and keeps file metadata as `user.e2b.*`
# extended attributes; the rules are in docs/protocols/envd-rules.md ("Entries", "Listing",
# "File metadata"). Output is one JSON document on stdout; refusals are exit codes that
# src/envd/helper.rs names.
import json
import os
import stat
import sys

NOT_FOUND, NOT_DIR, NO_SPACE, LOOP = 4, 5, 8, 9
PREFIX = "user.e2b."


def metadata(path):
    # Best effort, as envd's: a file whose attributes cannot be read simply has none.
    try:
        names = os.listxattr(path)
    except OSError:
        return None
    found = {}
    for name in names:
        if not name.startswith(PREFIX) or not name.isprintable():
            continue
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a name that is not UTF-8 cannot be a JSON key
            continue
        try:
            found[name[len(PREFIX):]] = os.getxattr(path, name).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return found or None


def owner(uid):
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def group(gid):
    try:
        import grp

        return grp.getgrgid(gid).gr_name
    except (KeyError, ImportError):
        return str(gid)


def kind(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "unknown"


def entry(path):
    st = os.lstat(path)
    target = None
    of = st.st_mode
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.path.realpath(path, strict=True)
        except OSError:
            target = path
        try:
            of = os.stat(target).st_mode
        except OSError:
            of = None
    return {
        "name": os.path.basename(path) or path,
        "path": path,
        "kind": "unknown" if of is None else kind(of),
        "size": st.st_size,
        "mode": 0 if of is None else stat.S_IMODE(of) & 0o777,
        "raw_mode": st.st_mode,
        "owner": owner(st.st_uid),
        "group": group(st.st_gid),
        "mtime_ns": st.st_mtime_ns,
        "target": target,
        "metadata": metadata(path),
    }


def walk(requested, resolved, depth):
    found = []

    def visit(directory, rel):
        for name in sorted(os.listdir(directory), key=os.fsencode):
            path = os.path.join(directory, name)
            try:
                e = entry(path)
            except FileNotFoundError:
                continue
            e["path"] = os.path.join(requested, *rel, name)
            found.append(e)
            if len(rel) + 1 < depth and stat.S_ISDIR(e["raw_mode"]):
                visit(path, rel + [name])

    visit(resolved, [])
    return found


def main(op, path, *rest):
    if op == "stat":
        try:
            return entry(path)
        except FileNotFoundError:
            sys.exit(NOT_FOUND)
    if op == "list":
        try:
            resolved = os.path.realpath(path, strict=True)
        except FileNotFoundError:
            sys.exit(NOT_FOUND)
        except OSError as e:
            if e.errno == 40:  # ELOOP
                sys.exit(LOOP)
            raise
        if not os.path.isdir(resolved):
            sys.exit(NOT_DIR)
        return walk(path, resolved, int(rest[0]))
    if op == "setmeta":
        wanted = json.load(sys.stdin)
        try:
            for name in os.listxattr(path):
                if name.startswith(PREFIX) and name[len(PREFIX):] not in wanted:
                    os.removexattr(path, name)
            for key, value in wanted.items():
                os.setxattr(path, PREFIX + key, value.encode("utf-8"))
        except OSError as e:
            if e.errno in (28, 122):  # ENOSPC, EDQUOT
                sys.exit(NO_SPACE)
            if e.errno != 95:  # EOPNOTSUPP: kept without metadata, as envd does
                raise
        return metadata(path)
    sys.exit("unknown operation " + op)


try:
    json.dump(main(*sys.argv[1:]), sys.stdout)
except OSError as e:
    sys.exit(f"{e.strerror}: {e.filename}")
