//! Picks the exposition format from an `Accept` header (RFC 9110 §12.5.1, with q-values).

/// The two formats we serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Prometheus text 0.0.4: the default for anything else.
    Text,
    /// OpenMetrics 1.0.0; what Prometheus 3 asks for first.
    OpenMetrics,
}

// === impl Format ===

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The format the client prefers: OpenMetrics when `application/openmetrics-text` (version absent or
/// 1.0.0) has a higher q than any text type we serve; text otherwise (also for a missing header).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut best_openmetrics: f32 = 0.0;
    let mut best_text: f32 = 0.0;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let mut q = 1.0_f32;
        let mut version: Option<String> = None;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    q = value
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0)
                }
                "version" => version = Some(value.to_string()),
                _ => {}
            }
        }
        match media.as_str() {
            "application/openmetrics-text" if version.as_deref().is_none_or(|v| v == "1.0.0") => {
                best_openmetrics = best_openmetrics.max(q);
            }
            "text/plain" | "text/*" | "*/*" => best_text = best_text.max(q),
            _ => {}
        }
    }
    // Ties go to OpenMetrics: a client that lists it at all understands it.
    if best_openmetrics > 0.0 && best_openmetrics >= best_text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn negotiates_like_prometheus_clients_expect() {
        use Format::*;
        let table: &[(Option<&str>, Format)] = &[
            (None, Text),
            (Some(""), Text),
            (Some("*/*"), Text),
            (Some("text/plain"), Text),
            (Some("text/plain;version=0.0.4"), Text),
            (Some("application/openmetrics-text"), OpenMetrics),
            (
                Some("application/openmetrics-text; version=1.0.0"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text;version=0.0.1"), Text),
            // Prometheus 3's default scrape_protocols.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
                ),
                OpenMetrics,
            ),
            // Prometheus 2's default.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                OpenMetrics,
            ),
            (
                Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
                Text,
            ),
            (Some("application/openmetrics-text;q=0"), Text),
            (Some("application/openmetrics-text;q=bogus"), Text),
            (
                Some("APPLICATION/OpenMetrics-Text; Version=\"1.0.0\""),
                OpenMetrics,
            ),
            (Some("application/json"), Text),
        ];
        for (accept, want) in table {
            assert_eq!(negotiate(*accept), *want, "Accept: {accept:?}");
        }
    }

    proptest! {
        #[test]
        fn negotiate_never_panics(s in "\\PC{0,120}") {
            let _ = negotiate(Some(&s));
        }
    }
}
