//! `get`'s rows and tables, as pure functions of the objects so every format
//! is unit-tested with fixed objects.
//!
//! The layout is flux's (olekukonko/tablewriter with no borders, left
//! aligned, `\t` after every cell, the header's last cell followed by a
//! space): each cell padded to its column's width, multi-line cells spread
//! over several lines. On a terminal the MESSAGE column is cut to fit the
//! width, and READY is coloured unless `NO_COLOR` is set.

use kube::api::DynamicObject;
use serde_json::Value;

use crate::kinds::{Column, Kind, Readiness, Revision};

/// How a table is written out.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Cut the last column so every line fits this many columns.
    pub width: Option<usize>,
    /// Colour READY (green True, red False).
    pub colour: bool,
}

/// The Ready condition of `object` as (status, message), or flux's
/// placeholder for an object not reconciled yet.
pub fn readiness(kind: &Kind, object: &DynamicObject) -> (String, String) {
    match kind.readiness {
        Readiness::Static(message) => return ("True".into(), message.into()),
        Readiness::HelmRepository if str_at(&object.data, &["spec", "type"]) == "oci" => {
            return ("True".into(), "Helm repository is Ready".into());
        }
        _ => {}
    }
    match condition(object, "Ready") {
        Some(c) => (
            str_at(c, &["status"]).to_owned(),
            str_at(c, &["message"]).to_owned(),
        ),
        None => ("False".into(), "waiting to be reconciled".into()),
    }
}

/// The condition `type_` of `object` (exact type).
pub fn condition<'a>(object: &'a DynamicObject, type_: &str) -> Option<&'a Value> {
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `--status-selector type=status`: the condition of that type (any case)
/// has that status (any case), as flux compares them.
pub fn status_matches(object: &DynamicObject, type_: &str, status: &str) -> bool {
    object.data["status"]["conditions"]
        .as_array()
        .and_then(|conditions| {
            conditions
                .iter()
                .rfind(|c| str_at(c, &["type"]).eq_ignore_ascii_case(type_))
        })
        .is_some_and(|c| str_at(c, &["status"]).eq_ignore_ascii_case(status))
}

/// The string at `path` in `value`, `""` when absent.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The REVISION column's text.
pub fn revision(revision: Revision, object: &DynamicObject) -> String {
    let status = &object.data["status"];
    match revision {
        Revision::Artifact => truncate_hex(str_at(status, &["artifact", "revision"])),
        Revision::ArtifactVerbatim => str_at(status, &["artifact", "revision"]).to_owned(),
        Revision::LastApplied => truncate_hex(str_at(status, &["lastAppliedRevision"])),
        Revision::HelmRelease => match status["history"].as_array().and_then(|h| h.first()) {
            Some(latest) => str_at(latest, &["chartVersion"]).to_owned(),
            None => str_at(status, &["lastAttemptedRevision"]).to_owned(),
        },
    }
}

/// Shortens every 40 to 128 lower-case hex digit word (a SHA-1 to SHA-512
/// digest) to its first 8 characters, as flux's `TruncateHex`.
pub fn truncate_hex(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    // Go's \b: a boundary between a word character and a non-word one.
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0 || !is_word(bytes[i - 1]);
        if at_boundary && is_hex(bytes[i]) {
            let end = (i..bytes.len())
                .find(|&j| !is_hex(bytes[j]))
                .unwrap_or(bytes.len());
            let len = end - i;
            let ends_word = end == bytes.len() || !is_word(bytes[end]);
            if (40..=128).contains(&len) && ends_word {
                out.push_str(&text[i..i + 8]);
                i = end;
                continue;
            }
            if ends_word || len > 128 {
                // Not a digest: copy the whole run.
                out.push_str(&text[i..end]);
                i = end;
                continue;
            }
        }
        // Copy one character (text is valid UTF-8; step over a whole char).
        let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// A status time (`2025-01-02T03:04:05Z`) as Go's `time.RFC3339` prints it
/// in the local time zone, as flux does.
pub fn local_time(text: &str) -> String {
    let Ok(ts) = text.parse::<jiff::Timestamp>() else {
        return text.to_owned();
    };
    let zoned = ts.to_zoned(jiff::tz::TimeZone::system());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

fn suspended(object: &DynamicObject) -> String {
    let suspended = object.data["spec"]["suspend"].as_bool().unwrap_or(false);
    if suspended { "True" } else { "False" }.to_owned()
}

/// The header of `kind`'s table.
pub fn headers(kind: &Kind, namespaced: bool) -> Vec<String> {
    let mut headers = Vec::new();
    if namespaced {
        headers.push("NAMESPACE".to_owned());
    }
    headers.push("NAME".to_owned());
    headers.extend(kind.columns.iter().map(|c| c.header().to_owned()));
    headers
}

/// One row of `kind`'s table: NAMESPACE with `-A`, the name (as
/// `kind/name` in `get all`), then the kind's columns.
pub fn row(kind: &Kind, object: &DynamicObject, namespaced: bool, with_kind: bool) -> Vec<String> {
    let mut row = Vec::new();
    if namespaced {
        row.push(object.metadata.namespace.clone().unwrap_or_default());
    }
    let name = object.metadata.name.clone().unwrap_or_default();
    row.push(if with_kind {
        format!("{}/{name}", kind.kind.to_lowercase())
    } else {
        name
    });
    let (ready, message) = readiness(kind, object);
    let status = &object.data["status"];
    for column in kind.columns {
        row.push(match column {
            Column::Revision(r) => revision(*r, object),
            Column::Suspended => suspended(object),
            Column::Ready => ready.clone(),
            Column::Message if kind.short_hex_message => truncate_hex(&message),
            Column::Message => message.clone(),
            Column::LatestImage => str_at(status, &["latestRef", "name"]).to_owned(),
            Column::LatestTag => str_at(status, &["latestRef", "tag"]).to_owned(),
            Column::LastScan => local_time(str_at(status, &["lastScanResult", "scanTime"])),
            Column::LastRun => local_time(str_at(status, &["lastAutomationRunTime"])),
        });
    }
    row
}

/// Display width of a cell line (characters; Flux's messages are ASCII or
/// narrow Unicode).
fn width(text: &str) -> usize {
    text.chars().count()
}

fn cut(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The narrowest the last column is cut to on a narrow terminal.
const MIN_MESSAGE: usize = 10;

/// Renders a table as flux does; `header` is `None` with `--no-header`.
pub fn render(header: Option<&[String]>, rows: &[Vec<String>], style: Style) -> String {
    let columns = header
        .map(<[String]>::len)
        .into_iter()
        .chain(rows.iter().map(Vec::len))
        .max()
        .unwrap_or(0);
    if columns == 0 || (rows.is_empty() && header.is_none()) {
        return String::new();
    }
    let lines_of = |cell: &str| -> Vec<String> { cell.split('\n').map(str::to_owned).collect() };
    let mut cells: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|row| row.iter().map(|c| lines_of(c)).collect())
        .collect();
    let mut widths = vec![0usize; columns];
    for line in header
        .into_iter()
        .flatten()
        .map(|h| vec![h.clone()])
        .enumerate()
    {
        widths[line.0] = widths[line.0].max(line.1.iter().map(|l| width(l)).max().unwrap_or(0));
    }
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.iter().map(|l| width(l)).max().unwrap_or(0));
        }
    }
    if let Some(max) = style.width {
        // Every cell is followed by one tab, which a terminal expands to the
        // next multiple of 8.
        let before: usize = widths[..columns - 1]
            .iter()
            .fold(0, |at, w| (at + w) / 8 * 8 + 8);
        // Below a few characters a message says nothing: let it wrap.
        let room = max.saturating_sub(before + 1).max(MIN_MESSAGE);
        if widths[columns - 1] > room {
            widths[columns - 1] = room;
            for row in &mut cells {
                if let Some(last) = row.get_mut(columns - 1) {
                    for line in last.iter_mut() {
                        *line = cut(line, room);
                    }
                }
            }
        }
    }
    let ready_column = header.and_then(|h| h.iter().position(|c| c == "READY"));
    let mut out = String::new();
    if let Some(header) = header {
        for (i, title) in header.iter().enumerate() {
            out.push_str(&pad(&cut(title, widths[i]), widths[i]));
            out.push(if i + 1 == columns { ' ' } else { '\t' });
        }
        out.push('\n');
    }
    for row in &cells {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for line in 0..height {
            for (i, width) in widths.iter().enumerate() {
                let text = row
                    .get(i)
                    .map(|cell| cell.get(line).map_or("  ", String::as_str))
                    .unwrap_or("");
                let padded = pad(text, *width);
                if style.colour && Some(i) == ready_column {
                    out.push_str(&colour_ready(text, &padded));
                } else {
                    out.push_str(&padded);
                }
                out.push('\t');
            }
            out.push('\n');
        }
    }
    out
}

fn pad(text: &str, to: usize) -> String {
    let mut out = text.to_owned();
    out.extend(std::iter::repeat_n(' ', to.saturating_sub(width(text))));
    out
}

fn colour_ready(text: &str, padded: &str) -> String {
    let code = match text {
        "True" => "32",
        "False" => "31",
        _ => return padded.to_owned(),
    };
    format!("\x1b[{code}m{text}\x1b[0m{}", &padded[text.len()..])
}

#[cfg(test)]
mod tests {
    // Test code: a failing unwrap is a failing test.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::kinds::KINDS;
    use serde_json::json;

    fn kind(name: &str) -> &'static Kind {
        KINDS.iter().find(|k| k.kind == name).unwrap()
    }

    fn object(kind: &Kind, name: &str, ns: &str, rest: Value) -> DynamicObject {
        let mut value = json!({
            "apiVersion": kind.api_version(), "kind": kind.kind,
            "metadata": {"name": name, "namespace": ns},
        });
        if let (Some(v), Some(rest)) = (value.as_object_mut(), rest.as_object()) {
            v.extend(rest.clone());
        }
        serde_json::from_value(value).unwrap()
    }

    fn ready(status: &str, message: &str) -> Value {
        json!([{"type": "Ready", "status": status, "message": message, "reason": "R",
            "lastTransitionTime": "2025-01-01T00:00:00Z"}])
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    /// Compares `text` with `snapshots/<name>.txt` (written instead when
    /// `UPDATE_SNAPSHOTS` is set; review the diff before committing).
    fn snapshot(name: &str, text: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("snapshots")
            .join(format!("{name}.txt"));
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
        assert_eq!(text, expected, "snapshot {name}");
    }

    fn table(kind: &Kind, objects: &[DynamicObject], namespaced: bool) -> String {
        let rows: Vec<_> = objects
            .iter()
            .map(|o| row(kind, o, namespaced, false))
            .collect();
        render(Some(&headers(kind, namespaced)), &rows, Style::default())
    }

    #[test]
    fn git_repositories() {
        let k = kind("GitRepository");
        let objects = [
            object(
                k,
                "podinfo",
                "flux-system",
                json!({
                    "spec": {"url": "http://x"},
                    "status": {"artifact": {"revision": format!("main@sha1:{SHA}")},
                        "conditions": ready("True", &format!("stored artifact for revision 'main@sha1:{SHA}'"))},
                }),
            ),
            object(k, "new", "flux-system", json!({"spec": {"suspend": true}})),
        ];
        snapshot("git", &table(k, &objects, false));
        snapshot("git-all-namespaces", &table(k, &objects[..1], true));
    }

    #[test]
    fn kustomizations_and_helm_releases() {
        let ks = kind("Kustomization");
        let o = object(
            ks,
            "apps",
            "default",
            json!({
                "spec": {"suspend": false},
                "status": {"lastAppliedRevision": format!("main@sha1:{SHA}"),
                    "conditions": ready("False", "kustomization path not found: stat /tmp/x: no such file\nsecond line")},
            }),
        );
        snapshot("kustomization-multi-line-message", &table(ks, &[o], false));
        let hr = kind("HelmRelease");
        let with_history = object(
            hr,
            "podinfo",
            "default",
            json!({
                "status": {"history": [{"chartVersion": "6.5.0"}, {"chartVersion": "6.4.0"}],
                    "lastAttemptedRevision": "6.5.1", "conditions": ready("True", &format!("Helm upgrade succeeded for release default/podinfo.v2 with chart podinfo@6.5.0+{SHA}"))},
            }),
        );
        let without = object(
            hr,
            "other",
            "default",
            json!({"status": {"lastAttemptedRevision": "1.0.0"}}),
        );
        let rows = [
            row(hr, &with_history, false, false),
            row(hr, &without, false, false),
        ];
        assert_eq!(rows[0][1], "6.5.0");
        // HelmRelease messages keep their digests, as flux prints them.
        assert!(rows[0][4].ends_with(SHA), "{rows:?}");
        assert_eq!(
            rows[1][1..],
            ["1.0.0", "False", "False", "waiting to be reconciled"]
        );
    }

    #[test]
    fn charts_keep_versions_and_oci_helm_repositories_are_ready() {
        let chart = kind("HelmChart");
        let o = object(
            chart,
            "default-podinfo",
            "flux-system",
            json!({
                "status": {"artifact": {"revision": "6.5.0"}, "conditions": ready("True", &format!("pulled 'podinfo' chart with version '6.5.0' from {SHA}"))},
            }),
        );
        assert_eq!(
            row(chart, &o, false, false),
            [
                "default-podinfo",
                "6.5.0",
                "False",
                "True",
                "pulled 'podinfo' chart with version '6.5.0' from 01234567"
            ]
        );
        let helm = kind("HelmRepository");
        let oci = object(
            helm,
            "charts",
            "flux-system",
            json!({"spec": {"type": "oci"}}),
        );
        assert_eq!(
            row(helm, &oci, false, false)[3..],
            ["True", "Helm repository is Ready"]
        );
    }

    #[test]
    fn images() {
        let policy = kind("ImagePolicy");
        let o = object(
            policy,
            "podinfo",
            "flux-system",
            json!({
                "status": {"latestRef": {"name": "ghcr.io/stefanprodan/podinfo", "tag": "6.5.0"},
                    "conditions": ready("True", "Latest image tag for ghcr.io/stefanprodan/podinfo resolved to 6.5.0")},
            }),
        );
        snapshot("image-policy", &table(policy, &[o], false));
        let repo = kind("ImageRepository");
        let o = object(
            repo,
            "podinfo",
            "flux-system",
            json!({
                "status": {"lastScanResult": {"scanTime": "2025-03-04T05:06:07Z", "tagCount": 3}},
            }),
        );
        assert_eq!(
            headers(repo, false),
            ["NAME", "LAST SCAN", "SUSPENDED", "READY", "MESSAGE"]
        );
        let scanned = &row(repo, &o, false, false)[1];
        assert_eq!(
            scanned.parse::<jiff::Timestamp>().unwrap(),
            "2025-03-04T05:06:07Z".parse::<jiff::Timestamp>().unwrap()
        );
        let update = kind("ImageUpdateAutomation");
        assert_eq!(
            headers(update, true),
            [
                "NAMESPACE",
                "NAME",
                "LAST RUN",
                "SUSPENDED",
                "READY",
                "MESSAGE"
            ]
        );
    }

    #[test]
    fn notifications() {
        let alert = kind("Alert");
        let provider = kind("Provider");
        let receiver = kind("Receiver");
        let a = object(
            alert,
            "slack",
            "flux-system",
            json!({"spec": {"suspend": true}}),
        );
        let p = object(provider, "slack", "flux-system", json!({}));
        let r = object(
            receiver,
            "github",
            "flux-system",
            json!({
                "status": {"conditions": ready("True", "Receiver initialized for path: /hook/abc")},
            }),
        );
        snapshot("alert", &table(alert, &[a], false));
        snapshot("alert-provider", &table(provider, &[p], false));
        snapshot("receiver", &table(receiver, &[r], false));
    }

    #[test]
    fn get_all_names_carry_the_kind_and_no_header_drops_it() {
        let ks = kind("Kustomization");
        let o = object(ks, "apps", "default", json!({}));
        let rows = [row(ks, &o, false, true)];
        assert_eq!(rows[0][0], "kustomization/apps");
        assert_eq!(
            render(None, &rows, Style::default()),
            "kustomization/apps\t\tFalse\tFalse\twaiting to be reconciled\t\n"
        );
    }

    #[test]
    fn terminal_width_cuts_the_message_and_colours_ready() {
        let ks = kind("Kustomization");
        let o = object(
            ks,
            "apps",
            "default",
            json!({
                "status": {"conditions": ready("False", "a very long message that does not fit")},
            }),
        );
        let rows = [row(ks, &o, false, false)];
        let out = render(
            Some(&headers(ks, false)),
            &rows,
            Style {
                width: Some(60),
                colour: true,
            },
        );
        // On screen: NAME(4)+tab to 8, REVISION(empty, 8 wide)+tab to 24,
        // SUSPENDED+tab to 40, READY+tab to 48: 11 columns are left before 60.
        let plain = out.replace("\x1b[31m", "").replace("\x1b[0m", "");
        for line in plain.lines() {
            let (before, last) = line.rsplit_once('\t').unwrap_or(("", line));
            let (before, last) = if last.is_empty() {
                before.rsplit_once('\t').unwrap()
            } else {
                (before, last)
            };
            let at = before
                .split('\t')
                .fold(0, |at, cell| (at + cell.chars().count()) / 8 * 8 + 8);
            assert!(at + last.trim_end().chars().count() < 60, "{line:?}");
        }
        assert!(out.contains("\x1b[31mFalse\x1b[0m\t"), "{out:?}");
        assert!(out.contains("\ta very lon…\t"), "{out:?}");
    }

    #[test]
    fn hex_truncation_matches_flux() {
        assert_eq!(
            truncate_hex(&format!("main@sha1:{SHA}")),
            "main@sha1:01234567"
        );
        let sha256 = "a".repeat(64);
        assert_eq!(truncate_hex(&format!("sha256:{sha256}")), "sha256:aaaaaaaa");
        // 39 digits, upper case, or glued to a word are left alone.
        let short = "b".repeat(39);
        assert_eq!(truncate_hex(&short), short);
        let upper = "A".repeat(40);
        assert_eq!(truncate_hex(&upper), upper);
        let glued = format!("x{SHA}");
        assert_eq!(truncate_hex(&glued), glued);
        assert_eq!(truncate_hex("é ok"), "é ok");
    }

    #[test]
    fn status_selector() {
        let ks = kind("Kustomization");
        let o = object(
            ks,
            "apps",
            "default",
            json!({"status": {"conditions": ready("False", "x")}}),
        );
        assert!(status_matches(&o, "ready", "false"));
        assert!(!status_matches(&o, "ready", "true"));
        assert!(!status_matches(&o, "healthy", "false"));
    }
}
