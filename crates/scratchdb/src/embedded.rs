//! A private Postgres cluster run with the system's `initdb`/`pg_ctl`, for when no admin URL is given.
//!
//! The cluster's life is tied to the process that started it by a watchdog: a small `sh` process whose
//! stdin is a pipe held by this process. When the pipe closes — `stop()`, a normal exit, a panic, or a
//! `SIGKILL` — the watchdog stops the cluster (and, for temporary clusters, removes the directory). That
//! is what lets test binaries, which never run destructors for statics, leave nothing behind.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use rand::distr::{Alphanumeric, SampleString};

/// Why the embedded cluster could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("no postgres binaries found under /usr/lib/postgresql/*/bin or via pg_config")]
    NoBinaries,
    #[error("no `postgres` os user to run the cluster as root")]
    NoPostgresUser,
    #[error("io error on {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{cmd} failed: {output}")]
    Command { cmd: String, output: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    let what = what.into();
    move |source| EmbeddedError::Io { what, source }
}

/// A running private cluster. `admin_url` holds the superuser password: never log it.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    admin_url: String,
    port: u16,
    data_dir: PathBuf,
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
    // Kept only so the directory outlives the cluster; the watchdog removes it.
    _temp: Option<tempfile::TempDir>,
}

impl EmbeddedPostgres {
    /// Starts (initialising on first use) a cluster whose files live under `dir`. The cluster is stopped
    /// when `stop` is called or this process exits, whichever comes first; `dir` is kept for next time.
    pub fn start(dir: &Path) -> Result<Self, EmbeddedError> {
        Self::start_inner(dir.to_path_buf(), None)
    }

    /// Starts a throw-away cluster in a fresh temporary directory that is removed when it stops.
    pub fn start_temporary() -> Result<Self, EmbeddedError> {
        let temp = tempfile::Builder::new().prefix("scratchdb-pg-").tempdir().map_err(io_err("tempdir"))?;
        Self::start_inner(temp.path().to_path_buf(), Some(temp))
    }

    fn start_inner(dir: PathBuf, temp: Option<tempfile::TempDir>) -> Result<Self, EmbeddedError> {
        let bin = bin_dir()?;
        let as_root = is_root();
        let pg_user = if as_root { Some(postgres_ids()?) } else { None };
        std::fs::create_dir_all(&dir).map_err(io_err(dir.display().to_string()))?;
        if as_root {
            // The postgres user must be able to reach its data directory through ours (tempdirs are 0700).
            let mode = std::fs::metadata(&dir).map_err(io_err("stat data dir"))?.permissions().mode();
            if mode & 0o001 == 0 {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o711))
                    .map_err(io_err("chmod data dir"))?;
            }
        }
        let data_dir = dir.join("pgdata");
        let pw_file = dir.join("admin-password");
        if !data_dir.join("PG_VERSION").exists() {
            init_cluster(&bin, &dir, &data_dir, &pw_file, pg_user)?;
        }
        let password = std::fs::read_to_string(&pw_file).map_err(io_err("read admin password"))?.trim().to_string();
        let mut last_err = None;
        // A port picked free can be taken before postgres binds it; a few tries make that race harmless.
        for _ in 0..3 {
            let port = free_port()?;
            write_runtime_conf(&data_dir, port)?;
            let log = data_dir.join("postgres.log");
            let out = pg_command(
                &bin.join("pg_ctl"),
                as_root,
                &["-D", path_str(&data_dir), "-l", path_str(&log), "-w", "-t", "60", "-s", "start"],
            )
            .stdin(Stdio::null())
            .process_group(0)
            .output()
            .map_err(io_err("pg_ctl start"))?;
            if out.status.success() {
                let watchdog = spawn_watchdog(&bin, &data_dir, temp.as_ref().map(|t| t.path()), as_root)?;
                let admin_url = format!("postgres://postgres:{password}@127.0.0.1:{port}/postgres?sslmode=disable");
                return Ok(Self {
                    admin_url,
                    port,
                    data_dir,
                    watchdog: Mutex::new(Some(watchdog)),
                    _temp: temp.map(keep_for_watchdog),
                });
            }
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            last_err = Some(EmbeddedError::Command {
                cmd: "pg_ctl start".into(),
                output: format!("{} {tail}", String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Err(last_err.unwrap_or(EmbeddedError::NoBinaries))
    }

    /// The superuser URL (TCP, scram password). Contains a secret.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the cluster and waits for it to be down. Idempotent.
    pub fn stop(&self) {
        let taken = self.watchdog.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The watchdog deletes a temporary directory itself; `TempDir`'s own cleanup must not race it.
fn keep_for_watchdog(temp: tempfile::TempDir) -> tempfile::TempDir {
    let mut temp = temp;
    temp.disable_cleanup(true);
    temp
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn postgres_ids() -> Result<(u32, u32), EmbeddedError> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io_err("/etc/passwd"))?;
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == "postgres").then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
        .ok_or(EmbeddedError::NoPostgresUser)
}

/// The newest installed server's binaries; Debian keeps one directory per major version.
pub fn bin_dir() -> Result<PathBuf, EmbeddedError> {
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in entries.flatten() {
            let Some(ver) = e.file_name().to_str().and_then(|v| v.split('.').next()?.parse::<u32>().ok()) else {
                continue;
            };
            let bin = e.path().join("bin");
            if bin.join("initdb").exists() && best.as_ref().is_none_or(|(v, _)| ver > *v) {
                best = Some((ver, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return Ok(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().map_err(|_| EmbeddedError::NoBinaries)?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if bin.join("initdb").exists() {
        Ok(bin)
    } else {
        Err(EmbeddedError::NoBinaries)
    }
}

fn pg_command(program: &Path, as_root: bool, args: &[&str]) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), EmbeddedError> {
    let out = cmd.stdin(Stdio::null()).output().map_err(io_err(what))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EmbeddedError::Command { cmd: what.into(), output: String::from_utf8_lossy(&out.stderr).trim().into() })
    }
}

fn init_cluster(
    bin: &Path,
    dir: &Path,
    data_dir: &Path,
    pw_file: &Path,
    pg_user: Option<(u32, u32)>,
) -> Result<(), EmbeddedError> {
    let password = Alphanumeric.sample_string(&mut rand::rng(), 32);
    // initdb reads the password from a file the postgres user can read; it is removed right after.
    let init_pw = dir.join("initdb-pw");
    std::fs::write(&init_pw, &password).map_err(io_err("write initdb password"))?;
    std::fs::set_permissions(&init_pw, std::fs::Permissions::from_mode(0o600)).map_err(io_err("chmod pw"))?;
    std::fs::create_dir_all(data_dir).map_err(io_err("create pgdata"))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700)).map_err(io_err("chmod pgdata"))?;
    if let Some((uid, gid)) = pg_user {
        std::os::unix::fs::chown(&init_pw, Some(uid), Some(gid)).map_err(io_err("chown pw"))?;
        std::os::unix::fs::chown(data_dir, Some(uid), Some(gid)).map_err(io_err("chown pgdata"))?;
    }
    let pw_arg = format!("--pwfile={}", init_pw.display());
    let result = run(
        pg_command(
            &bin.join("initdb"),
            pg_user.is_some(),
            &[
                "-D",
                path_str(data_dir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                &pw_arg,
            ],
        ),
        "initdb",
    );
    let _ = std::fs::remove_file(&init_pw);
    result?;
    let conf = data_dir.join("postgresql.conf");
    let mut f = std::fs::OpenOptions::new().append(true).open(&conf).map_err(io_err("postgresql.conf"))?;
    // Scratch data: durability against power loss buys nothing here and costs most of CREATE DATABASE.
    writeln!(
        f,
        "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 400\n\
         password_encryption = 'scram-sha-256'\ninclude_if_exists = 'scratchdb.conf'"
    )
    .map_err(io_err("postgresql.conf"))?;
    std::fs::write(pw_file, &password).map_err(io_err("write admin password"))?;
    std::fs::set_permissions(pw_file, std::fs::Permissions::from_mode(0o600)).map_err(io_err("chmod pw"))?;
    if let Some((uid, gid)) = pg_user {
        std::os::unix::fs::chown(data_dir.join("postgresql.conf"), Some(uid), Some(gid))
            .map_err(io_err("chown conf"))?;
    }
    Ok(())
}

/// Who may connect to what. Only TCP with a password from outside; the unix socket stays for the
/// postgres user's own tools. A resource's role is named like its database, and `sameuser` lets it
/// into that database and no other, whatever the databases' ACLs say. The admin database (which
/// holds the registry) and template1 (where a session would block CREATE DATABASE) are closed to
/// everyone but the superuser. Written at every start, so a data dir kept from an older version
/// gets these rules too.
const PG_HBA: &str = "local all postgres trust
host all postgres 127.0.0.1/32 scram-sha-256
host postgres,template1 all 127.0.0.1/32 reject
host sameuser all 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 reject
";

/// Files the server reads that are written as root must stay readable by the postgres user.
fn owned_like_data_dir(data_dir: &Path, file: &Path) {
    if let Ok(meta) = std::fs::metadata(data_dir) {
        let _ = std::os::unix::fs::chown(file, Some(meta.uid()), Some(meta.gid()));
    }
}

fn write_runtime_conf(data_dir: &Path, port: u16) -> Result<(), EmbeddedError> {
    let hba = data_dir.join("pg_hba.conf");
    std::fs::write(&hba, PG_HBA).map_err(io_err("pg_hba.conf"))?;
    owned_like_data_dir(data_dir, &hba);
    let sock = data_dir.join("sock");
    // A unix socket path must fit in sun_path (108 bytes); a deep data dir goes without one.
    let sock_dirs = if sock.as_os_str().len() < 90 {
        std::fs::create_dir_all(&sock).map_err(io_err("socket dir"))?;
        owned_like_data_dir(data_dir, &sock);
        sock.display().to_string()
    } else {
        String::new()
    };
    let conf = data_dir.join("scratchdb.conf");
    // temp_file_limit here is the default for roles scratchdb did not set one for (the superuser,
    // which may lift it with SET): the smallest budget any resource gets. A connection holds one of
    // the server's slots from its first packet, whatever its role's own limit: one that never
    // finishes logging in lets it go after authentication_timeout (60 s by default, 5 s here).
    std::fs::write(
        &conf,
        format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sock_dirs}'\n\
             temp_file_limit = '{}MB'\nauthentication_timeout = '5s'\n",
            crate::limits::TEMP_FILE_FLOOR_MB
        ),
    )
    .map_err(io_err("scratchdb.conf"))?;
    owned_like_data_dir(data_dir, &conf);
    Ok(())
}

fn free_port() -> Result<u16, EmbeddedError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("bind free port"))?;
    Ok(l.local_addr().map_err(io_err("local addr"))?.port())
}

fn spawn_watchdog(
    bin: &Path,
    data_dir: &Path,
    remove: Option<&Path>,
    as_root: bool,
) -> Result<(Child, ChildStdin), EmbeddedError> {
    let pg_ctl = bin.join("pg_ctl");
    let stop = if as_root { "runuser -u postgres -- \"$1\"" } else { "\"$1\"" };
    let script = format!(
        "cat >/dev/null; {stop} -D \"$2\" -m fast -w -t 60 -s stop >/dev/null 2>&1; \
         if [ -n \"$3\" ]; then rm -rf \"$3\"; fi"
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("scratchdb-watchdog")
        .arg(&pg_ctl)
        .arg(data_dir)
        .arg(remove.map(|p| p.as_os_str().to_owned()).unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C aimed at us must not kill the one process that cleans up.
        .process_group(0)
        .spawn()
        .map_err(io_err("spawn watchdog"))?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| EmbeddedError::Command { cmd: "spawn watchdog".into(), output: "no stdin pipe".into() })?;
    Ok((child, stdin))
}
