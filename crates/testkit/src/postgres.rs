//! A real PostgreSQL server for tests, from the distribution's packages, in a temporary
//! directory on a free loopback port.
//!
//! PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user
//! (which the Debian package makes) and runs through `runuser`. The server is not detached:
//! it runs under a small shell that waits on its standard input, a pipe this process holds,
//! and stops the server (and removes the cluster) when the pipe closes. So the server ends
//! with the test process however that ends, with no stop call to forget.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running PostgreSQL server; see the module docs.
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    bin: PathBuf,
    /// The watchdog shell; its stdin is the pipe whose closing stops the server.
    child: Mutex<Child>,
    databases: Mutex<u32>,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p): &(u32, PathBuf)| p.join("postgres").exists())
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, p)| p)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program args...`, as the cluster's owner.
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PostgresServer {
    /// One server for the whole test process, started on first use.
    ///
    /// Panics with what to install if PostgreSQL is not there.
    pub fn shared() -> &'static PostgresServer {
        static SERVER: OnceLock<PostgresServer> = OnceLock::new();
        SERVER.get_or_init(PostgresServer::start)
    }

    /// Starts a server: `initdb` into a fresh directory, then `postgres` on a free port.
    pub fn start() -> PostgresServer {
        let bin =
            bin_dir().expect("PostgreSQL is not installed: apt-get install postgresql (scripts/test.sh installs it)");
        let root = is_root();
        let dir = std::env::temp_dir().join(format!("artifact-pg-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        if root {
            let owned = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
            assert!(owned.is_ok_and(|s| s.success()), "chown of {} to postgres", dir.display());
        }
        let data = dir.join("data");
        let out = as_owner(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "artifact", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let script = format!(
            "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 >'{dir}/log' 2>&1 & pid=$!; \
             cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
            postgres = bin.join("postgres").display(),
            data = data.display(),
            dir = dir.display(),
        );
        let child = as_owner(Path::new("sh"), root)
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = PostgresServer { port, bin, child: Mutex::new(child), databases: Mutex::new(0) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.ready() {
            assert!(Instant::now() < deadline, "postgres did not come up: see {}/log", dir.display());
            std::thread::sleep(Duration::from_millis(50)); // between probes, not a synchronisation
        }
        server
    }

    fn ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "artifact", "-q"])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://artifact@127.0.0.1:{}/postgres", self.port)
    }

    /// A new, empty database; its URL.
    pub fn new_database(&self) -> String {
        let name = {
            let mut n = self.databases.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("test_{}_{}", std::process::id(), *n)
        };
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("postgres://artifact@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs one SQL command in the `postgres` database; panics if it fails.
    pub fn psql(&self, sql: &str) {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "artifact", "-d", "postgres"])
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server now (it also stops when this process ends).
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        drop(child.stdin.take());
        let _ = child.wait();
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        drop(child.stdin.take());
        let _ = child.wait();
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    h.finish()
}
