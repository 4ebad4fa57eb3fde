//! Flags in, `Config` or the error out.
use super::*;
use crate::{certgen::Target, vmi::lookup::VmiLookups};
use clap::{CommandFactory, Parser};
use std::path::PathBuf;

fn parse(args: &[&str]) -> Result<Config, String> {
    let args =
        Args::try_parse_from(std::iter::once("kube-metrics-webhook").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
    args.into_config()
        .map(|(_, config)| config)
        .map_err(|e| e.to_string())
}

#[test]
fn clap_definition_is_consistent() {
    Args::command().debug_assert();
}

#[test]
fn serves_by_default_with_the_documented_defaults() {
    for args in [&[][..], &["serve"][..]] {
        let Ok(Config::Serve(config)) = parse(args) else {
            panic!("{args:?} must serve")
        };
        assert_eq!(config.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(config.admin_listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(
            config.tls.cert,
            PathBuf::from("/etc/kube-metrics-webhook/tls/tls.crt")
        );
        assert_eq!(
            config.tls.key,
            PathBuf::from("/etc/kube-metrics-webhook/tls/tls.key")
        );
    }
}

#[test]
fn top_level_flags_and_serve_flags_mean_the_same() {
    for args in [
        &["--listen", "127.0.0.1:9443"][..],
        &["serve", "--listen", "127.0.0.1:9443"][..],
    ] {
        let Ok(Config::Serve(config)) = parse(args) else {
            panic!("{args:?}")
        };
        assert_eq!(config.listen, "127.0.0.1:9443".parse().unwrap());
    }
}

#[test]
fn rejects_one_address_for_both_listeners() {
    let error = parse(&[
        "--listen",
        "127.0.0.1:9000",
        "--admin-listen",
        "127.0.0.1:9000",
    ])
    .unwrap_err();
    assert!(error.contains("both 127.0.0.1:9000"), "{error}");
}

#[test]
fn vmi_lookup_is_on_with_a_two_second_budget_by_default() {
    let Ok(Config::Serve(config)) = parse(&[]) else {
        panic!("must serve")
    };
    assert!(
        matches!(config.vmi, VmiLookups::Cluster { budget } if budget == Duration::from_secs(2)),
        "{:?}",
        config.vmi
    );
}

#[test]
fn vmi_lookup_flags() {
    let Ok(Config::Serve(config)) = parse(&["--vmi-lookup", "off"]) else {
        panic!("must serve")
    };
    assert!(matches!(config.vmi, VmiLookups::Off), "{:?}", config.vmi);
    let Ok(Config::Serve(config)) = parse(&["--vmi-lookup-budget", "750ms"]) else {
        panic!("must serve")
    };
    assert!(
        matches!(config.vmi, VmiLookups::Cluster { budget } if budget == Duration::from_millis(750)),
        "{:?}",
        config.vmi
    );
    for bad in ["0s", "30s", "1h"] {
        let error = parse(&["--vmi-lookup-budget", bad]).unwrap_err();
        assert!(error.contains("--vmi-lookup-budget"), "{bad}: {error}");
    }
    assert!(
        parse(&["--vmi-lookup-budget", "2"]).is_err(),
        "a unit is required"
    );
    assert!(parse(&["--vmi-lookup", "maybe"]).is_err());
}

#[test]
fn rejects_one_file_for_cert_and_key() {
    let error = parse(&["--tls-cert", "/tls/pair.pem", "--tls-key", "/tls/pair.pem"]).unwrap_err();
    assert!(error.contains("same file"), "{error}");
}

#[test]
fn rejects_a_bad_log_filter() {
    assert!(
        parse(&["--log-level", "x=loud"])
            .unwrap_err()
            .contains("--log-level")
    );
}

/// `certgen` for the Service `kmw` in `ns-0`, with `more` flags.
fn certgen(more: &[&str]) -> Result<Config, String> {
    let args = ["certgen", "--service", "kmw", "--namespace", "ns-0"];
    parse(&[&args[..], more].concat())
}

#[test]
fn certgen_to_files_needs_no_cluster_names() {
    let config = certgen(&["--out-dir", "/tmp/x"]);
    let Ok(Config::Certgen(config)) = config else {
        panic!("{config:?}")
    };
    assert!(matches!(config.target, Target::Files(ref dir) if dir == &PathBuf::from("/tmp/x")));
    assert_eq!(config.validity, Duration::from_secs(3650 * 86_400));
}

#[test]
fn certgen_for_the_cluster_needs_secret_and_webhook_config() {
    let missing = certgen(&["--secret", "s"]);
    assert!(missing.unwrap_err().contains("--webhook-config"));
    let config = certgen(&["--secret", "s", "--webhook-config", "w"]);
    let Ok(Config::Certgen(config)) = config else {
        panic!("{config:?}")
    };
    assert!(
        matches!(config.target, Target::Cluster { ref secret, ref webhook_config }
        if secret == "s" && webhook_config == "w")
    );
}

#[test]
fn certgen_rejects_zero_validity() {
    let error = certgen(&["--out-dir", "d", "--validity-days", "0"]);
    assert!(error.unwrap_err().contains("--validity-days"));
}

#[test]
fn serve_flags_do_not_mix_with_certgen() {
    assert!(parse(&["--listen", "127.0.0.1:1", "certgen", "--service", "a"]).is_err());
}
