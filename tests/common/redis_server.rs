//! A real `redis-server` on an ephemeral port for the shared-state tests; stopped on drop, and
//! able to stop and come back on the same port (Redis going away mid-run).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = RedisServer { port, child: None };
        r.restart();
        r
    }

    /// (Re)starts the server on its port, empty (no persistence), and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server is needed for the shared-state tests (apt-get install -y redis-server): {e}")
            });
        self.child = Some(child);
        let start = Instant::now();
        while !self.answers() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts recording every command the server runs (Redis `MONITOR`), from now on.
    pub fn monitor(&self) -> Monitor {
        use std::io::{BufRead, BufReader, Write};
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("redis answers");
        s.write_all(b"MONITOR\r\n").unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut ok = String::new();
        reader.read_line(&mut ok).unwrap();
        assert_eq!(ok.trim_end(), "+OK", "MONITOR refused");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(MonitorLine::parse(&line));
            }
        });
        Monitor { lines, _conn: s }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The commands a Redis server ran, as `MONITOR` reported them (in order).
pub struct Monitor {
    lines: Arc<Mutex<Vec<MonitorLine>>>,
    _conn: TcpStream,
}

impl Monitor {
    pub fn commands(&self) -> Vec<MonitorLine> {
        self.lines.lock().unwrap().clone()
    }
}

/// One command: the client's address and the words, e.g. `["HSET", "key", "field", "1"]`.
#[derive(Clone, Debug)]
pub struct MonitorLine {
    pub client: String,
    pub words: Vec<String>,
}

impl MonitorLine {
    /// Parses `+1700000000.123 [0 127.0.0.1:5000] "HSET" "k" "f" "1"` (escapes are left as sent).
    fn parse(line: &str) -> MonitorLine {
        let client = line
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .and_then(|(inside, _)| inside.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string();
        let args = line.split_once("] ").map_or("", |(_, a)| a);
        let words = args
            .split("\" \"")
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        MonitorLine { client, words }
    }

    /// The command name, upper-case.
    pub fn command(&self) -> String {
        self.words
            .first()
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_default()
    }
}
