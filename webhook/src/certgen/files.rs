//! Writes a `Bundle` as the files a mounted `kubernetes.io/tls` Secret shows.
use std::{fs::OpenOptions, io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use super::{Bundle, CA_CRT, TLS_CRT, TLS_KEY};

/// Writes `tls.crt`, `ca.crt` (0644) and `tls.key` (0600) into `dir`, creating it if needed.
pub fn write(dir: &Path, bundle: &Bundle) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_file(&dir.join(TLS_CRT), bundle.cert_pem.as_bytes(), 0o644)?;
    write_file(&dir.join(CA_CRT), bundle.ca_pem.as_bytes(), 0o644)?;
    write_file(&dir.join(TLS_KEY), bundle.key_pem.as_bytes(), 0o600)
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    // `mode` applies only when the file is created; an existing key keeps its permissions.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_the_three_files_with_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("certs");
        let bundle = super::super::generate(
            &super::super::dns_names("kmw", "ns-0"),
            std::time::Duration::from_secs(86_400),
        )
        .unwrap();
        write(&out, &bundle).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(TLS_CRT)).unwrap(),
            bundle.cert_pem
        );
        assert_eq!(
            std::fs::read_to_string(out.join(CA_CRT)).unwrap(),
            bundle.ca_pem
        );
        assert_eq!(
            std::fs::read_to_string(out.join(TLS_KEY)).unwrap(),
            bundle.key_pem
        );
        let mode = std::fs::metadata(out.join(TLS_KEY))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
