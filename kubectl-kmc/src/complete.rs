//! Shell completion: scripts for `kubectl-kmc` from clap_complete, and the candidates kubectl asks
//! a plugin for when `kubectl kmc <TAB>` is completed. kubectl (1.26 and later) runs an
//! executable `kubectl_complete-kmc` with the words typed after `kubectl kmc` (the last one the
//! word being completed) and reads one candidate per line, then `:<directive>`; that executable
//! is a one-line script that calls `kubectl-kmc __complete "$@"` (docs/kubectl-kmc.md).

use clap::CommandFactory as _;

use crate::Cli;

/// Cobra's `ShellCompDirectiveNoFileComp`: offer no file names after the candidates.
const NO_FILE_COMPLETION: u8 = 4;

/// The completion script of `shell` for the `kubectl-kmc` executable.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kubectl-kmc", &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    // clap_complete 4.6's bash script names a subcommand's case `kubectl__subcmd__kmc__…` where
    // it set `kubectl__kmc__…` (it turns the executable's hyphen into its separator in one place
    // and into `__` in the other), so no subcommand's flags complete; one name for both.
    match shell {
        clap_complete::Shell::Bash => script.replace("kubectl__subcmd__kmc", "kubectl__kmc"),
        _ => script,
    }
}

/// The subcommands, or with a leading `-` the long flags, that complete the last of `words`,
/// after the subcommands the words before it name; then the directive line.
pub fn candidates(words: &[String]) -> String {
    let root = Cli::command();
    let (current, typed) = match words.split_last() {
        Some((last, before)) => (before, last.as_str()),
        None => (&[][..], ""),
    };
    let mut command = &root;
    for word in current {
        if let Some(sub) = command.find_subcommand(word) {
            command = sub;
        }
    }
    let mut out: Vec<String> = if typed.starts_with('-') {
        command
            .get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|long| format!("--{long}")))
            .collect()
    } else {
        command
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_owned())
            .collect()
    };
    out.retain(|c| c.starts_with(typed));
    out.sort();
    out.dedup();
    out.push(format!(":{NO_FILE_COMPLETION}"));
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(words: &[&str]) -> Vec<String> {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        candidates(&words).lines().map(str::to_owned).collect()
    }

    #[test]
    fn candidates_for_kubectl() {
        let cases: [(&[&str], &[&str]); 5] = [
            (&[""], &["check", "completion", "recommend", "top", ":4"]),
            (&["re"], &["recommend", ":4"]),
            (&["check", "--o"], &["--output", ":4"]),
            (
                &["top", "--prom"],
                &[
                    "--prometheus",
                    "--prometheus-ca",
                    "--prometheus-max-mib",
                    "--prometheus-object",
                    "--prometheus-token",
                    ":4",
                ],
            ),
            (&["recommend", "--qu"], &["--quantile", ":4"]),
        ];
        for (words, want) in cases {
            assert_eq!(complete(words), want, "{words:?}");
        }
    }

    #[test]
    fn scripts_name_the_executable() {
        let bash = script(clap_complete::Shell::Bash);
        assert!(
            bash.lines()
                .any(|l| l.trim_start().starts_with("complete -F") && l.ends_with(" kubectl-kmc")),
            "{bash}"
        );
        assert!(bash.contains("recommend"));
    }
}
