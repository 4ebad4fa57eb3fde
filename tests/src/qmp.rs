//! Just enough of QMP, QEMU's JSON control protocol, to hot-plug memory as KubeVirt's libvirt
//! does: one command at a time over QEMU's Unix socket (`-qmp unix:PATH,server=on,wait=off`).

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

/// Longest wait for one answer: `object-add` with `prealloc` answers once every page is touched.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// A QMP session past capability negotiation.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

// === impl Qmp ===

impl Qmp {
    /// Connects to QEMU's QMP socket, reads its greeting and leaves negotiation mode.
    pub fn connect(socket: &Path) -> Result<Self> {
        let writer = UnixStream::connect(socket)
            .with_context(|| format!("connecting to QMP at {}", socket.display()))?;
        writer.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let mut qmp = Self {
            reader: BufReader::new(writer.try_clone()?),
            writer,
        };
        let greeting = qmp.message()?;
        if greeting.get("QMP").is_none() {
            bail!("QMP greeting expected, got {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// Runs `command` and returns its `return` value; an `error` answer is an error.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let request = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}").with_context(|| format!("sending {command}"))?;
        loop {
            let mut answer = self.message()?;
            if let Some(value) = answer.get_mut("return") {
                return Ok(value.take());
            }
            if let Some(error) = answer.get("error") {
                bail!("QMP {command}: {error}");
            }
            // Anything else is an asynchronous event (DEVICE_ADDED, ACPI_DEVICE_OST, ...).
        }
    }

    /// Hot-plugs `bytes` of RAM, touched at once, as a `pc-dimm` named `id`: what libvirt's
    /// `attach-device` of a `<memory model='dimm'>` sends.
    pub fn plug_dimm(&mut self, id: &str, bytes: u64) -> Result<()> {
        let memdev = format!("mem{id}");
        self.execute(
            "object-add",
            json!({ "qom-type": "memory-backend-ram", "id": memdev, "size": bytes, "prealloc": true }),
        )?;
        // QEMU 7.2 spells this one with an underscore; there is no `device-add`.
        self.execute(
            "device_add",
            json!({ "driver": "pc-dimm", "id": id, "memdev": memdev }),
        )?;
        Ok(())
    }

    /// One JSON message, a line.
    fn message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let read = self
            .reader
            .read_line(&mut line)
            .context("reading from QMP")?;
        if read == 0 {
            bail!("QEMU closed QMP");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent {line:?}"))
    }
}
