//! [`ImagePolicySelector`]: the latest tag of a list by an ImagePolicy's
//! rules, as Flux's image-reflector-controller picks it: the tags matching
//! `filterTags.pattern` (each replaced by its `extract` expansion, if any),
//! then ordered by `semver`, `alphabetical` or `numerical`, and the chosen
//! value mapped back to the tag it came from.

use std::collections::BTreeMap;

use api::image::{ImagePolicyChoice, SortOrder, TagFilter};
use regex::Regex;
use runtime::semver::{Range, Version};

/// Why a policy cannot select a tag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The spec cannot work whatever the tags are (Flux's `InvalidPolicy`).
    #[error("{0}")]
    Invalid(String),
    /// No tag qualifies, or a tag cannot be ordered; new tags may change that.
    #[error("{0}")]
    NoLatest(String),
}

/// How tags are ordered; the latest is the last in that order.
#[derive(Clone, Debug)]
enum TagOrder {
    Semver(Range),
    Alphabetical {
        descending: bool,
    },
    Numerical {
        descending: bool,
    },
    /// By the images' build times, which the caller looks up.
    BuildTime,
}

/// `filterTags`: a pattern tags must match, and what of each tag is ordered.
#[derive(Clone, Debug)]
struct Filter {
    pattern: Regex,
    extract: String,
}

/// An ImagePolicy's selection rules, checked once.
#[derive(Clone, Debug)]
pub struct ImagePolicySelector {
    order: TagOrder,
    filter: Option<Filter>,
}

impl ImagePolicySelector {
    /// The rules of `policy` and `filter_tags`; an invalid range, order or
    /// pattern is [`PolicyError::Invalid`].
    pub fn new(
        policy: &ImagePolicyChoice,
        filter_tags: Option<&TagFilter>,
    ) -> Result<Self, PolicyError> {
        let descending = |order: Option<SortOrder>| order == Some(SortOrder::Desc);
        let order = match (
            &policy.semver,
            &policy.alphabetical,
            &policy.numerical,
            &policy.build_time,
        ) {
            (Some(semver), None, None, None) => TagOrder::Semver(
                Range::parse(&semver.range)
                    .map_err(|e| PolicyError::Invalid(format!("invalid policy: {e}")))?,
            ),
            (None, Some(alphabetical), None, None) => TagOrder::Alphabetical {
                descending: descending(alphabetical.order),
            },
            (None, None, Some(numerical), None) => TagOrder::Numerical {
                descending: descending(numerical.order),
            },
            (None, None, None, Some(_)) => TagOrder::BuildTime,
            _ => {
                return Err(PolicyError::Invalid(
                    "invalid policy: given ImagePolicyChoice object is invalid: exactly one of semver, alphabetical, numerical or buildTime must be set".into(),
                ));
            }
        };
        let filter = filter_tags.map(Filter::new).transpose()?;
        Ok(Self { order, filter })
    }

    /// Whether the order is by build time: the caller looks the times up
    /// for [`Self::candidates`] and picks with [`newest_build`].
    pub fn by_build_time(&self) -> bool {
        matches!(self.order, TagOrder::BuildTime)
    }

    /// The tags `filterTags` lets through, in store order.
    pub fn candidates<'a>(&self, tags: &'a [String]) -> Vec<&'a str> {
        tags.iter()
            .map(String::as_str)
            .filter(|tag| self.filter.as_ref().is_none_or(|f| f.apply(tag).is_some()))
            .collect()
    }

    /// The latest of `tags` (in the order the store keeps them).
    pub fn latest<'a>(&self, tags: &'a [String]) -> Result<&'a str, PolicyError> {
        match &self.filter {
            None => self
                .order
                .latest(tags.iter().map(|t| (t.as_str(), t.as_str()))),
            Some(filter) => {
                // Tags whose extracted values collide: the last one wins, as in Flux.
                let mut kept: BTreeMap<String, &'a str> = BTreeMap::new();
                for tag in tags {
                    if let Some(value) = filter.apply(tag) {
                        kept.insert(value, tag.as_str());
                    }
                }
                self.order
                    .latest(kept.iter().map(|(value, tag)| (value.as_str(), *tag)))
            }
        }
    }
}

/// The tag built last among `(tag, created)` pairs (RFC 3339 times; tags
/// without one never win); ties go to the higher tag in string order.
pub fn newest_build<'a>(built: &[(&'a str, Option<String>)]) -> Result<&'a str, PolicyError> {
    built
        .iter()
        .filter_map(|(tag, created)| {
            let time = created.as_deref()?.parse::<jiff::Timestamp>().ok()?;
            Some((time, *tag))
        })
        .max()
        .map(|(_, tag)| tag)
        .ok_or_else(|| {
            PolicyError::NoLatest(
                "no candidate tag's image states when it was built (config 'created')".into(),
            )
        })
}

impl Filter {
    fn new(spec: &TagFilter) -> Result<Self, PolicyError> {
        let source = spec.pattern.as_deref().unwrap_or_default();
        let pattern = Regex::new(source).map_err(|e| {
            PolicyError::Invalid(format!(
                "failed to filter tags: invalid regular expression pattern '{source}': {e}"
            ))
        })?;
        let extract = spec.extract.clone().unwrap_or_default();
        // Go expands an unknown group to nothing, which would order empty
        // strings; say which group is missing instead.
        for group in referenced_groups(&extract) {
            let known = match group.parse::<usize>() {
                Ok(index) => index < pattern.captures_len(),
                Err(_) => pattern.capture_names().flatten().any(|n| n == group),
            };
            if !known {
                return Err(PolicyError::Invalid(format!(
                    "failed to filter tags: extract '{extract}' refers to the group '{group}', which pattern '{source}' does not define"
                )));
            }
        }
        Ok(Self { pattern, extract })
    }

    /// The value ordered for `tag`, if it matches.
    fn apply(&self, tag: &str) -> Option<String> {
        let captures = self.pattern.captures(tag)?;
        if self.extract.is_empty() {
            return Some(tag.to_string());
        }
        let mut value = String::new();
        captures.expand(&self.extract, &mut value);
        Some(value)
    }
}

/// The group names and numbers `$name`, `${name}` and `$1` refer to.
fn referenced_groups(template: &str) -> Vec<&str> {
    let mut groups = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(stripped) = rest.strip_prefix('$') {
            rest = stripped;
            continue;
        }
        let (name, after) = if let Some(braced) = rest.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => break,
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if !name.is_empty() {
            groups.push(name);
        }
        rest = after;
    }
    groups
}

impl TagOrder {
    /// The latest of `(value, tag)` pairs by value; its tag.
    fn latest<'v, 't>(
        &self,
        candidates: impl Iterator<Item = (&'v str, &'t str)>,
    ) -> Result<&'t str, PolicyError> {
        let candidates: Vec<(&'v str, &'t str)> = candidates.collect();
        if candidates.is_empty() {
            return Err(PolicyError::NoLatest(
                "version list argument cannot be empty".into(),
            ));
        }
        match self {
            // Needs the images' build times: see `newest_build`.
            TagOrder::BuildTime => Err(PolicyError::NoLatest(
                "build-time order needs the images' build times".into(),
            )),
            TagOrder::Semver(range) => {
                let mut best: Option<(Version, &'t str)> = None;
                for (value, tag) in candidates {
                    let Some(version) = strict_version(value) else {
                        continue;
                    };
                    if !range.matches(&version) {
                        continue;
                    }
                    // Strictly greater: among equal versions the first seen stays.
                    if best.as_ref().is_none_or(|(b, _)| version > *b) {
                        best = Some((version, tag));
                    }
                }
                best.map(|(_, tag)| tag).ok_or_else(|| {
                    PolicyError::NoLatest(
                        "unable to determine latest version from provided list".into(),
                    )
                })
            }
            TagOrder::Alphabetical { descending } => {
                let pick = if *descending {
                    candidates.iter().min_by(|a, b| a.0.cmp(b.0))
                } else {
                    candidates.iter().max_by(|a, b| a.0.cmp(b.0))
                };
                pick.map(|(_, tag)| *tag).ok_or_else(|| {
                    PolicyError::NoLatest("version list argument cannot be empty".into())
                })
            }
            TagOrder::Numerical { descending } => {
                let mut best: Option<(f64, &'t str)> = None;
                for (value, tag) in candidates {
                    let number = parse_go_float(value).ok_or_else(|| {
                        PolicyError::NoLatest(format!(
                            "failed to parse invalid numeric value '{value}'"
                        ))
                    })?;
                    let replace = match best {
                        None => true,
                        // Ties go to the later one, as in Flux.
                        Some((b, _)) if *descending => number <= b,
                        Some((b, _)) => number >= b,
                    };
                    if replace {
                        best = Some((number, tag));
                    }
                }
                best.map(|(_, tag)| tag).ok_or_else(|| {
                    PolicyError::NoLatest("version list argument cannot be empty".into())
                })
            }
        }
    }
}

/// A tag as Flux's image policies read versions: Masterminds' strict
/// `MAJOR.MINOR.PATCH[-pre][+build]` (no leading zeros), after an optional `v`.
pub(crate) fn strict_version(tag: &str) -> Option<Version> {
    let text = tag.strip_prefix('v').unwrap_or(tag);
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let parts: Vec<&str> = text[..core_end].split('.').collect();
    let strict = parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
        });
    if strict { Version::parse(text) } else { None }
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms tags use
/// (`12`, `1.5`, `-3`, `1e6`, `Inf`, `NaN`).
fn parse_go_float(text: &str) -> Option<f64> {
    // Rust accepts a leading '+' and "infinity" just as Go does; it rejects
    // '_' separators, which Go also rejects without a base prefix.
    if text.is_empty() || text.trim() != text {
        return None;
    }
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::image::{AlphabeticalPolicy, NumericalPolicy, SemVerPolicy};

    fn tags(list: &[&str]) -> Vec<String> {
        // The store keeps tags in descending lexical order.
        let mut tags: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        tags.sort_by(|a, b| b.cmp(a));
        tags
    }

    fn semver(range: &str) -> ImagePolicyChoice {
        ImagePolicyChoice {
            semver: Some(SemVerPolicy {
                range: range.into(),
            }),
            alphabetical: None,
            numerical: None,
            build_time: None,
        }
    }

    fn alphabetical(order: Option<SortOrder>) -> ImagePolicyChoice {
        ImagePolicyChoice {
            semver: None,
            alphabetical: Some(AlphabeticalPolicy { order }),
            numerical: None,
            build_time: None,
        }
    }

    fn numerical(order: Option<SortOrder>) -> ImagePolicyChoice {
        ImagePolicyChoice {
            semver: None,
            alphabetical: None,
            numerical: Some(NumericalPolicy { order }),
            build_time: None,
        }
    }

    fn filter(pattern: &str, extract: &str) -> TagFilter {
        TagFilter {
            pattern: Some(pattern.into()),
            extract: (!extract.is_empty()).then(|| extract.into()),
        }
    }

    fn latest(
        choice: ImagePolicyChoice,
        f: Option<TagFilter>,
        list: &[&str],
    ) -> Result<String, PolicyError> {
        let selector = ImagePolicySelector::new(&choice, f.as_ref())?;
        selector.latest(&tags(list)).map(str::to_string)
    }

    #[test]
    fn semver_picks_the_highest_in_range_and_skips_non_versions() {
        let list = [
            "1.0.0",
            "1.2.3",
            "1.10.0",
            "2.0.0",
            "latest",
            "1.2",
            "v1.11.0",
            "1.12.0-rc.1",
        ];
        assert_eq!(latest(semver("1.x"), None, &list).unwrap(), "v1.11.0");
        assert_eq!(
            latest(semver(">=1.0.0 <1.5.0"), None, &list).unwrap(),
            "1.2.3"
        );
        assert_eq!(latest(semver("*"), None, &list).unwrap(), "2.0.0");
        // Pre-releases only when the range asks for them.
        assert_eq!(
            latest(semver(">=1.12.0-0"), None, &["1.11.0", "1.12.0-rc.1"]).unwrap(),
            "1.12.0-rc.1"
        );
        assert_eq!(
            latest(semver(">=1.11.0"), None, &["1.11.0", "1.12.0-rc.1"]).unwrap(),
            "1.11.0"
        );
        // `1.2` is no strict version.
        assert_eq!(
            latest(semver("~1.2"), None, &["1.2"]).unwrap_err(),
            PolicyError::NoLatest("unable to determine latest version from provided list".into())
        );
        assert_eq!(
            latest(semver("5.x"), None, &list).unwrap_err().to_string(),
            "unable to determine latest version from provided list"
        );
    }

    #[test]
    fn an_invalid_range_is_an_invalid_policy() {
        let err = ImagePolicySelector::new(&semver("not a range"), None).unwrap_err();
        assert!(
            matches!(err, PolicyError::Invalid(ref m) if m.starts_with("invalid policy: improper constraint")),
            "{err}"
        );
    }

    #[test]
    fn alphabetical_in_both_orders() {
        let list = ["a", "c", "b", "RELEASE.2023-01-02", "RELEASE.2024-05-06"];
        assert_eq!(latest(alphabetical(None), None, &list).unwrap(), "c");
        assert_eq!(
            latest(alphabetical(Some(SortOrder::Asc)), None, &list).unwrap(),
            "c"
        );
        assert_eq!(
            latest(alphabetical(Some(SortOrder::Desc)), None, &list).unwrap(),
            "RELEASE.2023-01-02"
        );
    }

    #[test]
    fn numerical_in_both_orders_and_a_tag_that_is_no_number() {
        let list = ["1", "10", "9", "2.5", "-1"];
        assert_eq!(latest(numerical(None), None, &list).unwrap(), "10");
        assert_eq!(
            latest(numerical(Some(SortOrder::Desc)), None, &list).unwrap(),
            "-1"
        );
        let err = latest(numerical(None), None, &["1", "latest"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to parse invalid numeric value 'latest'"
        );
    }

    #[test]
    fn filter_with_extract_orders_the_extracted_values_and_returns_the_tag() {
        let list = [
            "main-abc1234-1700000100",
            "main-def5678-1700000200",
            "pr-9-1800000000",
            "latest",
        ];
        let f = filter(r"^main-[a-f0-9]+-(?P<ts>[0-9]+)", "$ts");
        assert_eq!(
            latest(numerical(None), Some(f.clone()), &list).unwrap(),
            "main-def5678-1700000200"
        );
        assert_eq!(
            latest(numerical(Some(SortOrder::Desc)), Some(f), &list).unwrap(),
            "main-abc1234-1700000100"
        );
        // Without extract the whole tag is ordered.
        let f = filter(r"^v?1\.", "");
        assert_eq!(
            latest(semver("*"), Some(f), &["1.0.0", "1.3.0", "2.0.0"]).unwrap(),
            "1.3.0"
        );
        // No tag matches.
        let f = filter(r"^nothing", "");
        assert_eq!(
            latest(semver("*"), Some(f), &["1.0.0"])
                .unwrap_err()
                .to_string(),
            "version list argument cannot be empty"
        );
    }

    #[test]
    fn bad_patterns_and_missing_groups_are_invalid_policies() {
        let err = ImagePolicySelector::new(&numerical(None), Some(&filter("(", ""))).unwrap_err();
        assert!(
            matches!(err, PolicyError::Invalid(ref m) if m.contains("invalid regular expression pattern '('")),
            "{err}"
        );
        let err = ImagePolicySelector::new(
            &numerical(None),
            Some(&filter("^main-(?P<ts>[0-9]+)", "$stamp")),
        )
        .unwrap_err();
        assert!(
            matches!(err, PolicyError::Invalid(ref m) if m.contains("'stamp'")),
            "{err}"
        );
        assert!(
            ImagePolicySelector::new(&numerical(None), Some(&filter("^main-([0-9]+)", "${1}")))
                .is_ok()
        );
        assert!(
            ImagePolicySelector::new(&numerical(None), Some(&filter("^main-([0-9]+)", "$2")))
                .is_err()
        );
        assert!(
            ImagePolicySelector::new(&numerical(None), Some(&filter("^main-([0-9]+)", "$$1")))
                .is_ok()
        );
    }

    #[test]
    fn the_newest_build_wins_and_undated_images_never_do() {
        let built = [
            ("a", Some("2024-01-02T03:04:05Z".to_string())),
            ("b", Some("2025-06-01T00:00:00.123456789Z".to_string())),
            ("c", None),
            ("d", Some("not a time".to_string())),
        ];
        assert_eq!(newest_build(&built).unwrap(), "b");
        assert!(matches!(
            newest_build(&[("c", None)]),
            Err(PolicyError::NoLatest(_))
        ));
        let choice = ImagePolicyChoice {
            build_time: Some(api::image::BuildTimePolicy {}),
            ..ImagePolicyChoice::default()
        };
        let selector = ImagePolicySelector::new(&choice, Some(&filter("^main-", ""))).unwrap();
        assert!(selector.by_build_time());
        assert_eq!(
            selector.candidates(&tags(&["main-1", "v1", "main-2"])),
            ["main-2", "main-1"]
        );
    }

    #[test]
    fn exactly_one_ordering() {
        let none = ImagePolicyChoice {
            semver: None,
            alphabetical: None,
            numerical: None,
            build_time: None,
        };
        assert!(matches!(
            ImagePolicySelector::new(&none, None),
            Err(PolicyError::Invalid(_))
        ));
    }
}
