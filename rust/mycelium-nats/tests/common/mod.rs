//! A real `nats-server` per test on a free loopback port with its own temp dir, killed on
//! drop (also when the test panics).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mycelium_contracts::TradeTick;
use mycelium_protocol::Schema;

pub struct NatsServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl NatsServer {
    /// Starts a server; `extra_config` is appended to its config file.
    pub fn start(extra_config: &str) -> NatsServer {
        Self::start_with(|_| extra_config.to_string())
    }

    /// Starts a server with JetStream, storing in its own temp dir (kept across `restart`,
    /// removed on drop).
    pub fn start_jetstream() -> NatsServer {
        Self::start_with(|dir| {
            format!(
                "jetstream {{ store_dir: \"{}\" }}",
                dir.join("jetstream").display()
            )
        })
    }

    /// Three servers in one cluster (routes between them on loopback ports), each with its
    /// own client port.
    pub fn start_cluster() -> [NatsServer; 3] {
        Self::cluster(false)
    }

    /// [`start_cluster`](Self::start_cluster) with JetStream on every node (each storing in
    /// its own temp dir).
    pub fn start_jetstream_cluster() -> [NatsServer; 3] {
        Self::cluster(true)
    }

    fn cluster(jetstream: bool) -> [NatsServer; 3] {
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let node = |i: usize| {
            let peers: Vec<String> = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("\"nats-route://127.0.0.1:{}\"", routes[j]))
                .collect();
            let config = format!(
                "server_name: node{i}\ncluster {{\n  name: mycelium-test\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}",
                routes[i],
                peers.join(", ")
            );
            Self::start_with(|dir| {
                if jetstream {
                    format!(
                        "{config}\njetstream {{ store_dir: \"{}\" }}",
                        dir.join("jetstream").display()
                    )
                } else {
                    config
                }
            })
        };
        [node(0), node(1), node(2)]
    }

    fn start_with(extra_config: impl FnOnce(&Path) -> String) -> NatsServer {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("mycelium-nats-{}-{}", std::process::id(), port));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = dir.join("server.conf");
        std::fs::write(
            &config,
            format!("listen: 127.0.0.1:{port}\n{}\n", extra_config(&dir)),
        )
        .expect("config");
        let child = Command::new(server_binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (scripts/test-rust.sh installs it)");
        let server = NatsServer { child, port, dir };
        server.wait_ready();
        server
    }

    /// Kills the server (an outage); `start_again` brings it back on the same port.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again on the same port with the same configuration.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// Starts the server again after `kill`, on the same port with the same configuration.
    pub fn start_again(&mut self) {
        self.child = Command::new(server_binary())
            .arg("-c")
            .arg(self.dir.join("server.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH");
        self.wait_ready();
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `nats-server` from PATH, else Debian's /usr/sbin/nats-server (not on every user's PATH).
fn server_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("nats-server").is_file())
    });
    if on_path || !Path::new("/usr/sbin/nats-server").is_file() {
        PathBuf::from("nats-server")
    } else {
        PathBuf::from("/usr/sbin/nats-server")
    }
}

/// A loopback port free now and never handed out before in this process. The tests of one
/// binary run in parallel, and some kill their server and start it again on the same port
/// (`restart`, `kill` + `start_again`): without the registry another test could be given that
/// port while it was free, and the two tests' clients would meet on one server, which the
/// restarting test then kills: the likely cause of a CI run where
/// `messages_carry_one_schema_header_with_fingerprint_and_digest` never got its message.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

pub fn schema() -> Schema {
    Schema::from_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts.yaml"))
        .expect("contracts.yaml loads")
}

/// A throwaway CA and a server certificate it signed for 127.0.0.1, made with `openssl` in
/// `dir`: (ca.pem, server.pem, server.key). Each call makes a new CA.
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("cert dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl on PATH (scripts/test-rust.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=mycelium-test-ca",
    ]);
    run(&ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr);
    std::fs::write(
        dir.join("san.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("san");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// A fresh scratch directory under the system's temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mycelium-nats-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Waits (up to a generous liveness bound) until `condition` holds.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A tick whose `size` and `ts_ns` carry `i`, to check order and completeness.
pub fn tick(i: u64) -> TradeTick {
    TradeTick {
        symbol: "BTC-USD".into(),
        price: 1.0 + i as f64,
        size: i as u32,
        ts_ns: i,
        side: 0,
    }
}
