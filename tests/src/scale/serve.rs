//! The fleet served live: one loopback port per node, answering `GET /metrics` with what the
//! node's relay would (every pod's collector series, `namespace` and `pod` first, and the relay's
//! own), `GET /cadvisor` with the kubelet's working set of each pod, and `GET /controller` with
//! virt-controller's estimate of every VM of the fleet. Each answer is written at the time of the
//! request, so counters keep counting between scrapes.

use super::{Fleet, unix_now};
use anyhow::{Context as _, Result};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(120);

/// Serves a [`Fleet`] until dropped.
#[derive(Debug)]
pub struct Generator {
    /// One address per node, in node order.
    pub addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
}

// === impl Generator ===

impl Generator {
    pub fn start(fleet: Arc<Fleet>) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut addrs = Vec::new();
        for node in 0..fleet.nodes {
            let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a port")?;
            addrs.push(listener.local_addr()?);
            let (fleet, stop) = (Arc::clone(&fleet), Arc::clone(&stop));
            std::thread::spawn(move || accept(&listener, node, &fleet, &stop));
        }
        Ok(Self { addrs, stop })
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake each accept loop so it sees the flag.
        for addr in &self.addrs {
            let _ = TcpStream::connect(addr);
        }
    }
}

fn accept(listener: &TcpListener, node: usize, fleet: &Arc<Fleet>, stop: &Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (fleet, stop) = (Arc::clone(fleet), Arc::clone(stop));
        std::thread::spawn(move || {
            let _ = connection(stream, node, &fleet, &stop);
        });
    }
}

/// Answers GETs on one keep-alive connection until the client closes it.
fn connection(stream: TcpStream, node: usize, fleet: &Fleet, stop: &AtomicBool) -> Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut body = String::new();
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request)? == 0 || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // The headers: nothing in them changes the answer.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            if header.trim_end().is_empty() {
                break;
            }
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        body.clear();
        let status = render(fleet, node, path, &mut body);
        write!(
            writer,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        writer.write_all(body.as_bytes())?;
    }
}

/// Writes the answer to `path` for `node` into `out`; returns the status line's code and reason.
fn render(fleet: &Fleet, node: usize, path: &str, out: &mut String) -> &'static str {
    let now = unix_now();
    match path.split('?').next().unwrap_or(path) {
        "/metrics" => {
            for vm in fleet.on_node(node) {
                fleet.write_pod(vm, now, "", "", out);
            }
            fleet.write_relay(node, now, "", "", out);
        }
        "/cadvisor" => {
            for vm in fleet.on_node(node) {
                fleet.write_cadvisor(vm, now, "", "", out);
            }
        }
        "/controller" => {
            for vm in &fleet.vms {
                fleet.write_controller(vm, "", "", out);
            }
        }
        _ => return "404 Not Found",
    }
    "200 OK"
}
