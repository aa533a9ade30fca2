//! Semantic version ranges as Flux evaluates them (the Masterminds/semver v3
//! rules): GitRepository `ref.semver`, HelmChart `version`, OCIRepository
//! `ref.semver` and ImagePolicy semver policies all use this syntax.
//!
//! A range is one or more alternatives separated by `||`; an alternative is one
//! or more comparisons separated by commas or spaces, all of which must hold.
//! Comparisons: `=`, `!=`, `>`, `<`, `>=`, `<=` (also `=>`, `=<`), `~`/`~>`
//! (same minor, or same major when only the major is given), `^` (same major,
//! or narrower below 1.0), a bare version (equality, or `~` when it has
//! wildcards), wildcards `x`, `X`, `*` and missing parts (`1.2`, `1.x`), and
//! hyphen ranges `1.2 - 1.4.5`. Pre-release versions only satisfy comparisons
//! whose own version has a pre-release part.

use std::cmp::Ordering;
use std::fmt;

/// A version as Flux accepts it from tags: an optional `v`, up to three numeric
/// parts (missing ones are 0), an optional pre-release and build metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// Major part.
    pub major: u64,
    /// Minor part.
    pub minor: u64,
    /// Patch part.
    pub patch: u64,
    /// Pre-release identifiers (after `-`), empty for a release.
    pub pre: String,
    /// Build metadata (after `+`), ignored when comparing.
    pub build: String,
}

impl Version {
    /// Parses a version leniently (`v1`, `1.2`, `1.2.3-rc.1+build`); `None` if
    /// the text is not a version.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, valid_identifiers(build)?.to_string()),
            None => (text, String::new()),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, valid_identifiers(pre)?.to_string()),
            None => (rest, String::new()),
        };
        let mut parts = core.split('.');
        let mut next = |required: bool| -> Option<u64> {
            match parts.next() {
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok(),
                Some(_) => None,
                None if required => None,
                None => Some(0),
            }
        };
        let major = next(true)?;
        let minor = next(false)?;
        let patch = next(false)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }

    fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

fn valid_identifiers(text: &str) -> Option<&str> {
    let ok = !text.is_empty()
        && text
            .split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    ok.then_some(text)
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_prerelease(&self.pre, &other.pre))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

/// Semantic Versioning 2.0 pre-release precedence; a release sorts after any
/// pre-release of the same version.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

/// One comparison; `version` has wildcard parts set to 0 and flagged.
#[derive(Clone, Debug)]
struct Comparison {
    op: Op,
    version: Version,
    /// The minor part (and so the patch) was a wildcard or missing.
    minor_wild: bool,
    /// The patch part was a wildcard or missing.
    patch_wild: bool,
    /// The major part was a wildcard or missing: anything goes.
    any: bool,
}

/// A parsed version range.
#[derive(Clone, Debug)]
pub struct Range {
    alternatives: Vec<Vec<Comparison>>,
    text: String,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a range does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("improper constraint: {0}")]
pub struct RangeError(pub String);

impl Range {
    /// Parses a range; an empty range matches every release.
    pub fn parse(text: &str) -> Result<Range, RangeError> {
        let mut alternatives = Vec::new();
        for alternative in text.split("||") {
            let tokens =
                tokenize(alternative).ok_or_else(|| RangeError(alternative.trim().to_string()))?;
            let mut comparisons = Vec::new();
            let mut i = 0;
            while i < tokens.len() {
                // `A - B` is `>=A, <=B`.
                if i + 2 < tokens.len() && tokens[i + 1] == "-" {
                    comparisons.push(parse_comparison(&format!(">={}", tokens[i]))?);
                    comparisons.push(parse_comparison(&format!("<={}", tokens[i + 2]))?);
                    i += 3;
                    continue;
                }
                comparisons.push(parse_comparison(&tokens[i])?);
                i += 1;
            }
            if comparisons.is_empty() {
                if alternative.trim().is_empty() && !text.contains("||") {
                    comparisons.push(parse_comparison("*")?);
                } else {
                    return Err(RangeError(alternative.trim().to_string()));
                }
            }
            alternatives.push(comparisons);
        }
        Ok(Range {
            alternatives,
            text: text.to_string(),
        })
    }

    /// Whether `version` satisfies the range.
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|all| all.iter().all(|c| c.matches(version)))
    }

    /// The highest version among `candidates` (e.g. tag names) that satisfies
    /// the range, with the candidate it came from. Candidates that are not
    /// versions are ignored.
    pub fn highest<'a, I>(&self, candidates: I) -> Option<(&'a str, Version)>
    where
        I: IntoIterator<Item = &'a str>,
    {
        let mut best: Option<(&'a str, Version)> = None;
        for candidate in candidates {
            let Some(version) = Version::parse(candidate) else {
                continue;
            };
            if !self.matches(&version) {
                continue;
            }
            let better = match &best {
                None => true,
                Some((name, current)) => match version.cmp(current) {
                    Ordering::Greater => true,
                    // Equal versions (`v1.0.0`, `1.0.0`): the lexically first name, for stability.
                    Ordering::Equal => candidate < *name,
                    Ordering::Less => false,
                },
            };
            if better {
                best = Some((candidate, version));
            }
        }
        best
    }
}

/// Splits an alternative into comparisons (`>=1.2`, `1.3`) and hyphens,
/// joining an operator with the version after it.
fn tokenize(text: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let mut pending_op = String::new();
    for raw in text.split([',', ' ', '\t']).filter(|t| !t.is_empty()) {
        let is_op_only = raw.chars().all(|c| "=!<>~^".contains(c));
        if is_op_only {
            if !pending_op.is_empty() {
                return None;
            }
            pending_op = raw.to_string();
            continue;
        }
        if raw == "-" {
            if !pending_op.is_empty() {
                return None;
            }
            tokens.push(raw.to_string());
            continue;
        }
        tokens.push(format!("{}{raw}", std::mem::take(&mut pending_op)));
    }
    pending_op.is_empty().then_some(tokens)
}

fn parse_comparison(text: &str) -> Result<Comparison, RangeError> {
    let err = || RangeError(text.to_string());
    let split = text.find(|c: char| !"=!<>~^".contains(c)).ok_or_else(err)?;
    let (op_text, version_text) = text.split_at(split);
    let op = match op_text {
        "" | "=" => Op::Equal,
        "!=" => Op::NotEqual,
        ">" => Op::Greater,
        "<" => Op::Less,
        ">=" | "=>" => Op::GreaterEqual,
        "<=" | "=<" => Op::LessEqual,
        "~" | "~>" => Op::Tilde,
        "^" => Op::Caret,
        _ => return Err(err()),
    };
    let body = version_text.strip_prefix('v').unwrap_or(version_text);
    let (core, suffix) = match body.find(['-', '+']) {
        Some(i) => body.split_at(i),
        None => (body, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(err());
    }
    let wild = |p: &str| matches!(p, "x" | "X" | "*");
    let mut numbers = [0u64; 3];
    let mut wild_from = parts.len();
    for (i, part) in parts.iter().enumerate() {
        if wild(part) {
            wild_from = wild_from.min(i);
        } else if i < wild_from {
            numbers[i] = part.parse().map_err(|_| err())?;
        } else if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
    }
    let version = Version::parse(&format!(
        "{}.{}.{}{suffix}",
        numbers[0], numbers[1], numbers[2]
    ))
    .ok_or_else(err)?;
    Ok(Comparison {
        op,
        version,
        any: wild_from == 0,
        minor_wild: wild_from <= 1,
        patch_wild: wild_from <= 2,
    })
}

impl Comparison {
    fn wild(&self) -> bool {
        self.any || self.minor_wild || self.patch_wild
    }

    fn matches(&self, v: &Version) -> bool {
        let c = &self.version;
        // Pre-releases only match comparisons that ask for pre-releases.
        if v.is_prerelease() && !c.is_prerelease() {
            return false;
        }
        match self.op {
            Op::Equal => {
                if self.wild() {
                    self.tilde(v)
                } else {
                    v.cmp(c) == Ordering::Equal
                }
            }
            Op::NotEqual => {
                if self.any {
                    false
                } else if self.wild() {
                    v.major != c.major
                        || (!self.minor_wild && v.minor != c.minor)
                        || (!self.patch_wild && v.patch != c.patch)
                } else {
                    v.cmp(c) != Ordering::Equal
                }
            }
            Op::Greater => {
                if !self.wild() {
                    return v > c;
                }
                if self.any {
                    return false;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_wild {
                    return false;
                }
                v.minor > c.minor
            }
            Op::Less => v < c,
            Op::GreaterEqual => v >= c,
            Op::LessEqual => {
                if !self.wild() {
                    return v <= c;
                }
                if self.any {
                    return true;
                }
                if v.major != c.major {
                    return v.major < c.major;
                }
                self.minor_wild || v.minor <= c.minor
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => self.caret(v),
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v < c {
            return false;
        }
        if self.any
            || (c.major == 0
                && c.minor == 0
                && c.patch == 0
                && !self.minor_wild
                && !self.patch_wild)
        {
            return true;
        }
        v.major == c.major && (self.minor_wild || v.minor == c.minor)
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.any {
            return true;
        }
        if v < c {
            return false;
        }
        if c.major > 0 || self.minor_wild {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_wild {
            return v.minor == c.minor;
        }
        v.minor == 0 && v.patch == c.patch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(range: &str, version: &str) -> bool {
        let r = Range::parse(range).unwrap_or_else(|e| panic!("{range}: {e}"));
        let v = Version::parse(version).unwrap_or_else(|| panic!("{version} is a version"));
        r.matches(&v)
    }

    #[test]
    fn lenient_versions() {
        assert_eq!(
            Version::parse("v1.2.3").map(|v| v.to_string()).as_deref(),
            Some("1.2.3")
        );
        assert_eq!(
            Version::parse("1.2").map(|v| v.to_string()).as_deref(),
            Some("1.2.0")
        );
        assert_eq!(
            Version::parse("v2").map(|v| v.to_string()).as_deref(),
            Some("2.0.0")
        );
        assert_eq!(
            Version::parse("1.0.0-rc.1+b5")
                .map(|v| v.to_string())
                .as_deref(),
            Some("1.0.0-rc.1+b5")
        );
        for bad in [
            "",
            "latest",
            "1.2.3.4",
            "1..2",
            "v",
            "1.2.3-",
            "1.2.3-a..b",
            "release-1",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn precedence() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for pair in order.windows(2) {
            let (a, b) = (
                Version::parse(pair[0]).unwrap(),
                Version::parse(pair[1]).unwrap(),
            );
            assert!(a < b, "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn comparisons_and_wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            ("1.2.3", "1.2.3", true),
            ("=1.2.3", "1.2.4", false),
            ("!=1.2.3", "1.2.4", true),
            ("!=1.2.x", "1.2.9", false),
            ("!=1.2.x", "1.3.0", true),
            (">1.2.3", "1.2.4", true),
            (">1.2", "1.2.9", false),
            (">1.2", "1.3.0", true),
            (">1", "1.9.9", false),
            (">1", "2.0.0", true),
            ("<1.2.3", "1.2.2", true),
            ("<1.2", "1.2.0", false),
            (">=1.2.3", "1.2.3", true),
            ("=>1.2.3", "1.2.2", false),
            ("<=1.2.3", "1.2.3", true),
            ("<=1.2", "1.2.9", true),
            ("<=1.2", "1.3.0", false),
            ("1.2.x", "1.2.7", true),
            ("1.2.x", "1.3.0", false),
            ("1.x", "1.9.0", true),
            ("1", "1.9.0", true),
            ("1", "2.0.0", false),
            ("*", "7.0.0", true),
            ("", "0.1.0", true),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~1", "1.9.0", true),
            ("~>1.2", "1.2.0", true),
            ("~0.0.0", "5.0.0", true),
            ("^1.2.3", "1.9.0", true),
            ("^1.2.3", "2.0.0", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0", "0.9.0", true),
            ("^0", "1.0.0", false),
            ("^0.0", "0.0.9", true),
            ("^0.0", "0.1.0", false),
            ("5.*", "5.4.3", true),
            (">=1.0.0 <2.0.0", "1.5.0", true),
            (">=1.0.0, <2.0.0", "2.0.0", false),
            (">= 1.0, < 2", "1.9.9", true),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            ("1.2 - 1.4.5", "1.1.9", false),
            ("<1.0.0 || >=3.0.0", "3.1.0", true),
            ("<1.0.0 || >=3.0.0", "2.0.0", false),
        ];
        for (range, version, want) in cases {
            assert_eq!(check(range, version), *want, "{range} vs {version}");
        }
    }

    #[test]
    fn prereleases_need_a_prerelease_comparison() {
        assert!(!check(">=1.0.0", "1.1.0-rc.1"));
        assert!(!check("*", "1.1.0-rc.1"));
        assert!(check(">=1.1.0-0", "1.1.0-rc.1"));
        assert!(check(">=1.0.0-rc.1", "1.0.0-rc.2"));
        assert!(check("~1.1.0-0", "1.1.0-beta"));
    }

    #[test]
    fn invalid_ranges() {
        for bad in [">=", "1.2.3.4", "abc", ">>1", "1.2 -", "1 || ", ">= 1 <"] {
            assert!(Range::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn highest_matching_candidate() {
        let r = Range::parse(">=1.0.0 <2.0.0").unwrap();
        let tags = [
            "v0.9.0",
            "v1.0.0",
            "v1.10.0",
            "v1.9.0",
            "v2.0.0",
            "latest",
            "v1.11.0-rc.1",
        ];
        let (tag, version) = r.highest(tags).expect("a match");
        assert_eq!(tag, "v1.10.0");
        assert_eq!(version.to_string(), "1.10.0");
        assert!(Range::parse("3.x").unwrap().highest(tags).is_none());
        let dup = Range::parse("1.0.0").unwrap().highest(["v1.0.0", "1.0.0"]);
        assert_eq!(dup.map(|(t, _)| t), Some("1.0.0"));
    }
}
