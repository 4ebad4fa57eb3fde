//! Debian's `prometheus-process-exporter`, run inside a fake pod for comparison.

use crate::http::{self, Endpoint};
use crate::pod::FakePod;
use crate::process::Guarded;
use anyhow::Result;
use std::net::SocketAddr;
use std::time::Duration;

const BINARY: &str = "/usr/bin/prometheus-process-exporter";
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A process-exporter serving inside a fake pod.
#[derive(Debug)]
pub struct ProcessExporter {
    /// Host PID of the exporter process.
    pub pid: u32,
    pub addr: SocketAddr,
    _guard: Guarded,
}

// === impl ProcessExporter ===

impl ProcessExporter {
    /// Starts it with one group per `(group, argv[0] basename)`; every other flag at its default.
    pub fn start(pod: &FakePod, groups: &[(String, String)]) -> Result<Self> {
        let config = pod.dir().join("process-exporter.yml");
        std::fs::write(&config, config_yaml(groups))?;
        let addr: SocketAddr = ([127, 0, 0, 1], http::free_port()?).into();
        let mut command = pod.command(None);
        command
            .arg(BINARY)
            .args(["-procfs", "/proc", "-config.path"])
            .arg(&config)
            .arg("-web.listen-address")
            .arg(addr.to_string());
        let (mut guard, pid) = pod.spawn_command("process-exporter", command, BINARY)?;
        guard.wait_until_ok(&Endpoint::Tcp(addr), "/metrics", READY_TIMEOUT)?;
        Ok(Self {
            pid,
            addr,
            _guard: guard,
        })
    }
}

/// `process_names` with one `exe` matcher per group (a name without `/` matches argv[0]'s basename).
fn config_yaml(groups: &[(String, String)]) -> String {
    let mut yaml = String::from("process_names:\n");
    for (name, exe) in groups {
        yaml.push_str(&format!(
            "  - name: \"{name}\"\n    exe:\n      - \"{exe}\"\n"
        ));
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_role() {
        let yaml = config_yaml(&[("qemu".into(), "qemu-kvm".into())]);
        assert_eq!(
            yaml,
            "process_names:\n  - name: \"qemu\"\n    exe:\n      - \"qemu-kvm\"\n"
        );
    }
}
