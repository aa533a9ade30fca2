//! Go-style durations (`metav1.Duration`) as they appear in Flux specs.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Pattern Flux puts on most duration fields: one or more `<number><unit>` groups, units up to hours.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Pattern Flux puts on timeouts: like [`DURATION_PATTERN`] but without hours.
pub const SHORT_DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// A duration exactly as the user wrote it (`5m`, `1h30m`, `5m0s`).
///
/// The text is kept verbatim so that reading and writing an object never rewrites
/// `5m0s` into `5m`; [`Duration::to_std`] interprets it with Go's `time.ParseDuration`
/// rules. The schema is a plain string; each field adds the pattern Flux uses for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(String);

impl Duration {
    /// Wraps a duration string without checking it; the API server validates patterns.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// Renders a std duration the way Go's `time.Duration.String` does (`1m30s`,
    /// `1h0m0s`, `2.5s`, `750ms`), which is how Flux writes durations into status.
    pub fn from_std(duration: std::time::Duration) -> Self {
        Self(go_duration_string(duration))
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Interprets the text as a Go duration; negative durations, and those
    /// longer than Go's longest (which the CRD patterns let through), are an
    /// error.
    pub fn to_std(&self) -> Result<std::time::Duration, Error> {
        // kube's parser panics where Go's reports an overflow.
        if go_seconds(&self.0).is_some_and(|seconds| seconds > GO_MAX_SECONDS) {
            return Err(Error::InvalidDuration {
                value: self.0.clone(),
                reason: "longer than Go's longest duration (2562047h47m16.854775807s)".into(),
            });
        }
        let parsed: kube::core::Duration =
            self.0
                .parse()
                .map_err(
                    |err: kube::core::duration::ParseError| Error::InvalidDuration {
                        value: self.0.clone(),
                        reason: err.to_string(),
                    },
                )?;
        if parsed.is_negative() {
            return Err(Error::NegativeDuration(self.0.clone()));
        }
        Ok(parsed.into())
    }
}

/// Go's longest duration (`1<<63 - 1` nanoseconds), in seconds.
const GO_MAX_SECONDS: f64 = 9_223_372_036.854_776;

/// The length of a Go duration in seconds, sign ignored, as a float (only
/// compared with [`GO_MAX_SECONDS`]); `None` when it is not one, which the
/// parser then reports.
fn go_seconds(text: &str) -> Option<f64> {
    let mut rest = text.trim_start_matches(['+', '-']);
    let mut total = 0.0;
    while !rest.is_empty() && rest != "0" {
        let unit_start = rest.find(char::is_alphabetic)?;
        let (number, tail) = rest.split_at(unit_start);
        let unit_end = tail
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * scale;
        rest = tail;
    }
    Some(total)
}

/// Go's `time.Duration.String` for non-negative durations.
fn go_duration_string(duration: std::time::Duration) -> String {
    /// `value` (an integer count of `10^-digits` units) as a decimal with trailing zeros trimmed.
    fn decimal(value: u128, digits: u32) -> String {
        let scale = 10u128.pow(digits);
        let (whole, frac) = (value / scale, value % scale);
        if frac == 0 {
            return whole.to_string();
        }
        let frac = format!("{frac:0width$}", width = digits as usize);
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }

    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 3));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 6));
    }
    let secs = duration.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    let seconds = decimal(
        u128::from(seconds) * 1_000_000_000 + u128::from(duration.subsec_nanos()),
        9,
    );
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Duration {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl JsonSchema for Duration {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_text_and_parses_go_units() {
        let d: Duration = serde_json::from_value(serde_json::json!("5m0s")).unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), serde_json::json!("5m0s"));
        assert_eq!(d.to_std().unwrap(), std::time::Duration::from_secs(300));
        assert_eq!(
            Duration::new("1h30m").to_std().unwrap(),
            std::time::Duration::from_secs(5400)
        );
        assert_eq!(
            Duration::new("1.5s").to_std().unwrap(),
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(
            Duration::new("250ms").to_std().unwrap(),
            std::time::Duration::from_millis(250)
        );
    }

    #[test]
    fn rejects_garbage_and_negative() {
        assert!(matches!(
            Duration::new("5x").to_std(),
            Err(Error::InvalidDuration { .. })
        ));
        assert!(matches!(
            Duration::new("-5s").to_std(),
            Err(Error::NegativeDuration(_))
        ));
    }

    #[test]
    fn rejects_what_overflows_go_and_takes_its_longest() {
        // The CRD patterns accept these; Go's ParseDuration refuses them.
        for text in ["99999999999999999999h", "2562048h", "2562047h47m17s"] {
            assert!(
                matches!(
                    Duration::new(text).to_std(),
                    Err(Error::InvalidDuration { .. })
                ),
                "{text}"
            );
        }
        assert_eq!(
            Duration::new("2562047h47m16s").to_std().unwrap(),
            std::time::Duration::from_secs(9_223_372_036)
        );
    }

    #[test]
    fn renders_std_durations_like_go() {
        use std::time::Duration as Std;
        let cases = [
            (Std::ZERO, "0s"),
            (Std::from_nanos(999), "999ns"),
            (Std::from_nanos(1_500), "1.5µs"),
            (Std::from_micros(750), "750µs"),
            (Std::from_millis(750), "750ms"),
            (Std::from_millis(2_500), "2.5s"),
            (Std::from_secs(90), "1m30s"),
            (Std::from_secs(3600), "1h0m0s"),
            (Std::from_millis(3_723_400), "1h2m3.4s"),
        ];
        for (duration, text) in cases {
            assert_eq!(Duration::from_std(duration).as_str(), text);
            assert_eq!(Duration::new(text).to_std().unwrap(), duration, "{text}");
        }
    }
}
