//! How the collector's log events are printed on stderr: the collector
//! emits them with `tracing` (`event = "listening"`, its fields, and the
//! message), and [`init`] installs a subscriber that prints each one as
//! docs/collector.md says:
//!
//! - text (the default): `tagwatch: MESSAGE`, the lines scripts read; the
//!   per-request events (target [`REQUEST`]) are not printed, nor built;
//! - JSON: one object a line, `{"time","level","event","message",…fields}`.
//!
//! tracing-subscriber's own formatters lay lines out otherwise (`tagwatch:`
//! prefix missing; JSON with `timestamp`, upper-case levels and nested
//! fields), so this layer prints the documented ones; events, levels,
//! filtering and dispatch are tracing's.
//!
//! Fields: strings, numbers and booleans as they are; a field named
//! `fields` holds more fields as a JSON object (a `serde_json::Value`,
//! recorded with `%`), merged into the line: the arrays and objects some
//! events carry.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::Registry;

use tagwatch_core::report::read::push_json_str;
use tagwatch_store::timefmt::{iso_from_ms, now_ms};

/// The target of per-request events (`accepted`, `refused`): printed in
/// JSON only, where one line a request is what was asked for.
pub const REQUEST: &str = "tagwatch::request";

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Installs the stderr printer of `format` as the process's subscriber.
/// `false` when one was installed already (the first one stays).
pub fn init(format: LogFormat) -> bool {
    let filter = match format {
        LogFormat::Text => Targets::new()
            .with_target(REQUEST, LevelFilter::OFF)
            .with_default(LevelFilter::INFO),
        LogFormat::Json => Targets::new().with_default(LevelFilter::INFO),
    };
    let subscriber = Registry::default().with(Lines(format).with_filter(filter));
    tracing::subscriber::set_global_default(subscriber).is_ok()
}

/// The layer that prints lines.
struct Lines(LogFormat);

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = match self.0 {
            LogFormat::Text => format!("tagwatch: {}\n", fields.message),
            LogFormat::Json => json_line(event.metadata().level(), &fields),
        };
        // Nothing to do if stderr is gone.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

fn json_line(level: &Level, f: &Fields) -> String {
    let mut out = String::with_capacity(128 + f.json.len());
    out.push_str("{\"time\":");
    push_json_str(&mut out, &iso_from_ms(now_ms()));
    out.push_str(",\"level\":");
    push_json_str(&mut out, &level.as_str().to_ascii_lowercase());
    out.push_str(",\"event\":");
    push_json_str(&mut out, &f.event);
    out.push_str(",\"message\":");
    push_json_str(&mut out, &f.message);
    out.push_str(&f.json);
    out.push_str("}\n");
    out
}

/// An event's fields: its `event` name, its message, and the rest as JSON
/// members (each preceded by a comma).
#[derive(Default)]
struct Fields {
    event: String,
    message: String,
    json: String,
}

impl Fields {
    fn member(&mut self, name: &str) {
        self.json.push(',');
        push_json_str(&mut self.json, name);
        self.json.push(':');
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "event" => value.clone_into(&mut self.event),
            "message" => value.clone_into(&mut self.message),
            name => {
                self.member(name);
                push_json_str(&mut self.json, value);
            }
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field.name());
        let _ = write!(self.json, "{value}");
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field.name());
        let _ = write!(self.json, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field.name());
        self.json.push_str(if value { "true" } else { "false" });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = text,
            "event" => self.event = text,
            // A JSON object: its members join the line's.
            "fields" => {
                let inner = text.trim();
                let members = inner
                    .strip_prefix('{')
                    .and_then(|m| m.strip_suffix('}'))
                    .unwrap_or("");
                if !members.trim().is_empty() {
                    self.json.push(',');
                    self.json.push_str(members);
                }
            }
            name => {
                self.member(name);
                push_json_str(&mut self.json, &text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_the_documented_keys() {
        let mut f = Fields {
            event: "accepted".into(),
            message: "accepted a \"batch\"".into(),
            ..Fields::default()
        };
        f.member("status");
        f.json.push_str("403");
        f.json.push_str(r#","sites":["tw_a"]"#);
        let line = json_line(&Level::INFO, &f);
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(v["level"], "info");
        assert_eq!(v["event"], "accepted");
        assert_eq!(v["message"], "accepted a \"batch\"");
        assert_eq!(v["status"], 403);
        assert_eq!(v["sites"], serde_json::json!(["tw_a"]));
        assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    }
}
