//! Links back to a UI a person opens: the same query and time range in the
//! upstream's Prometheus UI or in Grafana Explore (`external_url`).

use serde::{Deserialize, Serialize};
use serde_json::json;

/// Which UI `external_url` points at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalUi {
    /// Prometheus's own UI (`/graph`; Thanos and Mimir-with-a-UI alike).
    #[default]
    Prometheus,
    /// Grafana Explore, with `grafana_datasource` naming the datasource.
    Grafana,
}

/// Why an upstream's link settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LinkConfigError {
    #[error("external_url: {0:?} is not a URL ({1}): send e.g. \"https://prometheus.example.com\"")]
    NotUrl(String, url::ParseError),
    #[error(
        "external_url: must be an http:// or https:// URL with a host, without credentials, query or fragment"
    )]
    Unsafe,
    #[error(
        "grafana_datasource: required with external_ui = \"grafana\" (the datasource uid, 1-40 letters, digits, '-' or '_')"
    )]
    MissingDatasource,
    #[error("grafana_datasource: {0:?} must be 1-40 letters, digits, '-' or '_'")]
    BadDatasource(String),
    #[error("external_ui / grafana_datasource: set external_url too")]
    NoUrl,
}

/// A checked link base: what answers' links are built from.
#[derive(Clone, Debug)]
pub struct ExternalLink {
    base: url::Url,
    ui: ExternalUi,
    datasource: Option<String>,
}

/// The time a query covers: an instant, or a range with its step.
#[derive(Clone, Copy, Debug)]
pub enum LinkTime {
    /// Unix seconds.
    Instant(f64),
    /// Unix seconds, and seconds between points.
    Range { start: f64, end: f64, step: f64 },
}

impl ExternalLink {
    /// Checks the settings (the one place they are checked): `None` when no
    /// `external_url` is set.
    pub fn build(
        external_url: Option<&str>,
        ui: ExternalUi,
        datasource: Option<&str>,
    ) -> Result<Option<Self>, LinkConfigError> {
        let Some(text) = external_url else {
            return match (ui, datasource) {
                (ExternalUi::Prometheus, None) => Ok(None),
                _ => Err(LinkConfigError::NoUrl),
            };
        };
        let base = url::Url::parse(text).map_err(|e| LinkConfigError::NotUrl(text.into(), e))?;
        let safe = matches!(base.scheme(), "http" | "https")
            && base.host_str().is_some()
            && base.username().is_empty()
            && base.password().is_none()
            && base.query().is_none()
            && base.fragment().is_none();
        if !safe {
            return Err(LinkConfigError::Unsafe);
        }
        let datasource = match (ui, datasource) {
            (ExternalUi::Grafana, None) => return Err(LinkConfigError::MissingDatasource),
            (_, Some(uid))
                if uid.is_empty()
                    || uid.len() > 40
                    || !uid
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                return Err(LinkConfigError::BadDatasource(uid.into()));
            }
            (_, uid) => uid.map(str::to_owned),
        };
        Ok(Some(Self {
            base,
            ui,
            datasource,
        }))
    }

    /// The name of the UI, for the text: "Prometheus" or "Grafana".
    pub fn ui_name(&self) -> &'static str {
        match self.ui {
            ExternalUi::Prometheus => "Prometheus",
            ExternalUi::Grafana => "Grafana",
        }
    }

    /// The URL that opens `expr` over `time` (every part encoded: the
    /// expression is the caller's text).
    pub fn query(&self, expr: &str, time: LinkTime) -> String {
        let mut url = self.base.clone();
        let path = match self.ui {
            ExternalUi::Prometheus => "graph",
            ExternalUi::Grafana => "explore",
        };
        let joined = format!("{}/{path}", url.path().trim_end_matches('/'));
        url.set_path(&joined);
        {
            let mut query = url.query_pairs_mut();
            match self.ui {
                ExternalUi::Prometheus => {
                    query.append_pair("g0.expr", expr);
                    match time {
                        LinkTime::Instant(at) => {
                            query.append_pair("g0.tab", "1");
                            query.append_pair("g0.moment_input", &ui_time(at));
                        }
                        LinkTime::Range { start, end, step } => {
                            query.append_pair("g0.tab", "0");
                            query.append_pair(
                                "g0.range_input",
                                &format!("{}s", (end - start).round().max(1.0)),
                            );
                            query.append_pair("g0.end_input", &ui_time(end));
                            query.append_pair("g0.step_input", &format!("{step}"));
                        }
                    }
                }
                ExternalUi::Grafana => {
                    let uid = self.datasource.as_deref().unwrap_or_default();
                    let (from, to) = match time {
                        LinkTime::Instant(at) => (at - 300.0, at),
                        LinkTime::Range { start, end, .. } => (start, end),
                    };
                    let panes = json!({"mcp": {
                        "datasource": uid,
                        "queries": [{"refId": "A", "expr": expr,
                                     "datasource": {"type": "prometheus", "uid": uid}}],
                        "range": {"from": millis(from), "to": millis(to)},
                    }});
                    query.append_pair("schemaVersion", "1");
                    query.append_pair("panes", &panes.to_string());
                }
            }
        }
        url.into()
    }
}

/// `2026-12-07 18:00:00`, UTC: what Prometheus's UI reads in its time fields.
fn ui_time(unix: f64) -> String {
    chrono::DateTime::from_timestamp(unix.round() as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Unix milliseconds as Grafana's range wants them (a string).
fn millis(unix: f64) -> String {
    format!("{}", (unix * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(link: &str) -> Vec<(String, String)> {
        url::Url::parse(link)
            .expect("a URL")
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn a_prometheus_range_link_carries_the_query_and_window() {
        let link = ExternalLink::build(
            Some("https://prom.example.com/sub/"),
            ExternalUi::Prometheus,
            None,
        )
        .expect("valid")
        .expect("set");
        let expr = r#"sum(rate(x{a="b&c#d"}[5m])) / 2 + 1"#;
        let url = link.query(
            expr,
            LinkTime::Range {
                start: 1_767_362_645.0,
                end: 1_767_366_245.0,
                step: 15.0,
            },
        );
        assert!(
            url.starts_with("https://prom.example.com/sub/graph?"),
            "{url}"
        );
        assert_eq!(
            pairs(&url),
            vec![
                ("g0.expr".into(), expr.into()),
                ("g0.tab".into(), "0".into()),
                ("g0.range_input".into(), "3600s".into()),
                ("g0.end_input".into(), "2026-01-02 15:04:05".into()),
                ("g0.step_input".into(), "15".into()),
            ]
        );
    }

    #[test]
    fn a_grafana_link_names_the_datasource_and_range() {
        let link = ExternalLink::build(
            Some("https://grafana.example.com"),
            ExternalUi::Grafana,
            Some("prom-1"),
        )
        .expect("valid")
        .expect("set");
        let url = link.query("up", LinkTime::Instant(1_767_366_245.0));
        let (_, panes) = pairs(&url)
            .into_iter()
            .find(|(k, _)| k == "panes")
            .expect("panes");
        let panes: serde_json::Value = serde_json::from_str(&panes).expect("json");
        assert_eq!(panes["mcp"]["queries"][0]["expr"], "up");
        assert_eq!(panes["mcp"]["datasource"], "prom-1");
        assert_eq!(panes["mcp"]["range"]["to"], "1767366245000");
        assert!(
            url.starts_with("https://grafana.example.com/explore?"),
            "{url}"
        );
    }

    #[test]
    fn unsafe_or_incomplete_settings_are_refused() {
        for (url, ui, uid) in [
            (Some("javascript:alert(1)"), ExternalUi::Prometheus, None),
            (
                Some("https://user:pw@prom.example.com"),
                ExternalUi::Prometheus,
                None,
            ),
            (
                Some("https://prom.example.com/?a=b"),
                ExternalUi::Prometheus,
                None,
            ),
            (Some("not a url"), ExternalUi::Prometheus, None),
            (
                Some("https://grafana.example.com"),
                ExternalUi::Grafana,
                None,
            ),
            (
                Some("https://grafana.example.com"),
                ExternalUi::Grafana,
                Some("a/b"),
            ),
            (None, ExternalUi::Grafana, Some("uid")),
        ] {
            assert!(
                ExternalLink::build(url, ui, uid).is_err(),
                "{url:?} {ui:?} {uid:?}"
            );
        }
        assert!(
            ExternalLink::build(None, ExternalUi::Prometheus, None)
                .expect("fine")
                .is_none()
        );
    }
}
