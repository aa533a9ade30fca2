//! The one table of every Flux kind the verbs accept: how the command line
//! names it, where it lives in the API, what `get` prints for it, whether it
//! can be suspended or reconciled, and which source `--with-source`
//! reconciles first. Verbs are written once against this table, so a kind is
//! added here and nowhere else.

/// The word a group of kinds sits under on the command line
/// (`get sources git`, `reconcile source git`, `get images policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `source` (`sources` for `get`).
    Source,
    /// `image` (`images` for `get`).
    Image,
}

impl Family {
    /// The word for `verb`: plural for `get`, as flux prints it.
    pub fn word(self, get: bool) -> &'static str {
        match (self, get) {
            (Family::Source, true) => "sources",
            (Family::Source, false) => "source",
            (Family::Image, true) => "images",
            (Family::Image, false) => "image",
        }
    }

    /// The other spelling, accepted as an alias.
    pub fn alias(self, get: bool) -> &'static str {
        self.word(!get)
    }
}

/// One column of `get`'s table after NAME (and NAMESPACE with `-A`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// REVISION: what the object last produced or applied.
    Revision(Revision),
    /// SUSPENDED: `spec.suspend` as `True`/`False`.
    Suspended,
    /// READY: the Ready condition's status.
    Ready,
    /// MESSAGE: the Ready condition's message.
    Message,
    /// IMAGE: an ImagePolicy's `status.latestRef.name`.
    LatestImage,
    /// TAG: an ImagePolicy's `status.latestRef.tag`.
    LatestTag,
    /// LAST SCAN: an ImageRepository's `status.lastScanResult.scanTime`.
    LastScan,
    /// LAST RUN: an ImageUpdateAutomation's `status.lastAutomationRunTime`.
    LastRun,
}

impl Column {
    /// The header, as flux's table printer upper-cases it.
    pub fn header(self) -> &'static str {
        match self {
            Column::Revision(_) => "REVISION",
            Column::Suspended => "SUSPENDED",
            Column::Ready => "READY",
            Column::Message => "MESSAGE",
            Column::LatestImage => "IMAGE",
            Column::LatestTag => "TAG",
            Column::LastScan => "LAST SCAN",
            Column::LastRun => "LAST RUN",
        }
    }
}

/// Where REVISION comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revision {
    /// `status.artifact.revision`, long hex digests shortened to 8 characters.
    Artifact,
    /// `status.artifact.revision` as is (a HelmChart's is a SemVer version).
    ArtifactVerbatim,
    /// A Kustomization's `status.lastAppliedRevision`, digests shortened.
    LastApplied,
    /// A HelmRelease's latest chart version in its history, else
    /// `status.lastAttemptedRevision`.
    HelmRelease,
}

/// Where READY and MESSAGE come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// The Ready condition; "waiting to be reconciled" without one.
    Condition,
    /// Always ready with this message: the kind has no status (Alert and
    /// Provider v1beta3, as flux prints them).
    Static(&'static str),
    /// A HelmRepository: `type: oci` ones have no status and are ready.
    HelmRepository,
}

/// The source `reconcile --with-source` reconciles (and waits for) first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceOf {
    /// The kind has no `--with-source`.
    None,
    /// `spec.sourceRef` (kind, name, namespace defaulting to the object's).
    SourceRef,
    /// A HelmChart's `spec.sourceRef`, always in the chart's namespace; the
    /// chart's source is always reconciled first, as flux does.
    ChartSourceRef,
    /// A HelmRelease's `spec.chartRef`, else the HelmChart helm-controller
    /// made for `spec.chart` (`<namespace>-<name>` in the source's namespace).
    HelmReleaseChart,
}

/// What `reconcile` prints once the object is Ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Success {
    /// `fetched revision <status.artifact.revision>`.
    FetchedRevision,
    /// `applied revision <REVISION column>`.
    AppliedRevision,
    /// `scan fetched <n> tags`.
    ScanTags,
    /// `selected ref <image>:<tag>`.
    SelectedRef,
    /// The Ready condition's message.
    ReadyMessage,
    /// `<Kind> reconciliation completed`.
    Completed,
}

/// One Flux kind.
#[derive(Debug, PartialEq, Eq)]
pub struct Kind {
    /// The Kubernetes kind, e.g. `GitRepository`.
    pub kind: &'static str,
    /// API group.
    pub group: &'static str,
    /// API version the CLI reads and writes (one every Flux version serves).
    pub version: &'static str,
    /// The resource's plural.
    pub plural: &'static str,
    /// The group word, for kinds under `source` or `image`.
    pub family: Option<Family>,
    /// The command-line name outside `get` (`kustomization`, `git`).
    pub name: &'static str,
    /// The command-line name for `get` (`kustomizations`, `git`).
    pub get_name: &'static str,
    /// Further aliases (`ks`, `hr`).
    pub aliases: &'static [&'static str],
    /// How flux names it in messages (`source git`, `image policy`).
    pub human: &'static str,
    /// Columns of `get` after the name.
    pub columns: &'static [Column],
    /// READY and MESSAGE.
    pub readiness: Readiness,
    /// Whether long hex digests in MESSAGE are shortened, as flux does for
    /// sources and Kustomizations.
    pub short_hex_message: bool,
    /// Has `spec.suspend`.
    pub suspendable: bool,
    /// Has a controller that honours `reconcile.fluxcd.io/requestedAt`
    /// (Alert and Provider have none: `resume` does not wait for them).
    pub reconcilable: bool,
    /// Source for `--with-source`.
    pub source: SourceOf,
    /// Accepts `reconcile --force` and `--reset` (HelmRelease).
    pub force_and_reset: bool,
    /// What a successful reconcile says.
    pub success: Success,
}

const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
const IMAGE_GROUP: &str = "image.toolkit.fluxcd.io";
const NOTIFICATION_GROUP: &str = "notification.toolkit.fluxcd.io";

const SOURCE_COLUMNS: &[Column] = &[
    Column::Revision(Revision::Artifact),
    Column::Suspended,
    Column::Ready,
    Column::Message,
];

/// A source kind under `source <name>`.
const fn source(kind: &'static str, plural: &'static str, name: &'static str) -> Kind {
    Kind {
        kind,
        group: SOURCE_GROUP,
        version: "v1",
        plural,
        family: Some(Family::Source),
        name,
        get_name: name,
        aliases: &[],
        human: "",
        columns: SOURCE_COLUMNS,
        readiness: Readiness::Condition,
        short_hex_message: true,
        suspendable: true,
        reconcilable: true,
        source: SourceOf::None,
        force_and_reset: false,
        success: Success::FetchedRevision,
    }
}

/// Every kind, in the order `get all` prints them (as flux: sources, images,
/// HelmReleases, Kustomizations, Receivers, Providers, Alerts).
pub static KINDS: &[Kind] = &[
    Kind {
        human: "source oci",
        ..source("OCIRepository", "ocirepositories", "oci")
    },
    Kind {
        human: "source bucket",
        ..source("Bucket", "buckets", "bucket")
    },
    Kind {
        human: "source git",
        ..source("GitRepository", "gitrepositories", "git")
    },
    Kind {
        human: "source helm",
        readiness: Readiness::HelmRepository,
        ..source("HelmRepository", "helmrepositories", "helm")
    },
    Kind {
        human: "source chart",
        columns: &[
            Column::Revision(Revision::ArtifactVerbatim),
            Column::Suspended,
            Column::Ready,
            Column::Message,
        ],
        source: SourceOf::ChartSourceRef,
        ..source("HelmChart", "helmcharts", "chart")
    },
    Kind {
        kind: "ImageRepository",
        group: IMAGE_GROUP,
        version: "v1",
        plural: "imagerepositories",
        family: Some(Family::Image),
        name: "repository",
        get_name: "repository",
        aliases: &[],
        human: "image repository",
        columns: &[
            Column::LastScan,
            Column::Suspended,
            Column::Ready,
            Column::Message,
        ],
        readiness: Readiness::Condition,
        short_hex_message: false,
        suspendable: true,
        reconcilable: true,
        source: SourceOf::None,
        force_and_reset: false,
        success: Success::ScanTags,
    },
    Kind {
        kind: "ImagePolicy",
        group: IMAGE_GROUP,
        version: "v1",
        plural: "imagepolicies",
        family: Some(Family::Image),
        name: "policy",
        get_name: "policy",
        aliases: &[],
        human: "image policy",
        columns: &[
            Column::LatestImage,
            Column::LatestTag,
            Column::Ready,
            Column::Message,
        ],
        readiness: Readiness::Condition,
        short_hex_message: false,
        suspendable: true,
        reconcilable: true,
        source: SourceOf::None,
        force_and_reset: false,
        success: Success::SelectedRef,
    },
    Kind {
        kind: "ImageUpdateAutomation",
        group: IMAGE_GROUP,
        version: "v1",
        plural: "imageupdateautomations",
        family: Some(Family::Image),
        name: "update",
        get_name: "update",
        aliases: &[],
        human: "image update automation",
        columns: &[
            Column::LastRun,
            Column::Suspended,
            Column::Ready,
            Column::Message,
        ],
        readiness: Readiness::Condition,
        short_hex_message: false,
        suspendable: true,
        reconcilable: true,
        source: SourceOf::None,
        force_and_reset: false,
        success: Success::ReadyMessage,
    },
    Kind {
        kind: "HelmRelease",
        group: "helm.toolkit.fluxcd.io",
        version: "v2",
        plural: "helmreleases",
        family: None,
        name: "helmrelease",
        get_name: "helmreleases",
        aliases: &["hr"],
        human: "helmrelease",
        columns: &[
            Column::Revision(Revision::HelmRelease),
            Column::Suspended,
            Column::Ready,
            Column::Message,
        ],
        readiness: Readiness::Condition,
        short_hex_message: false,
        suspendable: true,
        reconcilable: true,
        source: SourceOf::HelmReleaseChart,
        force_and_reset: true,
        success: Success::AppliedRevision,
    },
    Kind {
        kind: "Kustomization",
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1",
        plural: "kustomizations",
        family: None,
        name: "kustomization",
        get_name: "kustomizations",
        aliases: &["ks"],
        human: "kustomization",
        columns: &[
            Column::Revision(Revision::LastApplied),
            Column::Suspended,
            Column::Ready,
            Column::Message,
        ],
        readiness: Readiness::Condition,
        short_hex_message: true,
        suspendable: true,
        reconcilable: true,
        source: SourceOf::SourceRef,
        force_and_reset: false,
        success: Success::AppliedRevision,
    },
    Kind {
        kind: "Receiver",
        group: NOTIFICATION_GROUP,
        version: "v1",
        plural: "receivers",
        family: None,
        name: "receiver",
        get_name: "receivers",
        aliases: &[],
        human: "receiver",
        columns: &[Column::Suspended, Column::Ready, Column::Message],
        readiness: Readiness::Condition,
        short_hex_message: false,
        suspendable: true,
        reconcilable: true,
        source: SourceOf::None,
        force_and_reset: false,
        success: Success::Completed,
    },
    Kind {
        kind: "Provider",
        group: NOTIFICATION_GROUP,
        version: "v1beta3",
        plural: "providers",
        family: None,
        name: "alert-provider",
        get_name: "alert-providers",
        aliases: &[],
        human: "alert provider",
        columns: &[Column::Ready, Column::Message],
        readiness: Readiness::Static("Provider is Ready"),
        short_hex_message: false,
        suspendable: true,
        reconcilable: false,
        source: SourceOf::None,
        force_and_reset: false,
        success: Success::Completed,
    },
    Kind {
        kind: "Alert",
        group: NOTIFICATION_GROUP,
        version: "v1beta3",
        plural: "alerts",
        family: None,
        name: "alert",
        get_name: "alerts",
        aliases: &[],
        human: "alert",
        columns: &[Column::Suspended, Column::Ready, Column::Message],
        readiness: Readiness::Static("Alert is Ready"),
        short_hex_message: false,
        suspendable: true,
        reconcilable: false,
        source: SourceOf::None,
        force_and_reset: false,
        success: Success::Completed,
    },
];

impl Kind {
    /// `group/version`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The kind whose Kubernetes kind is `kind` (a `sourceRef.kind`).
    pub fn by_kind(kind: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.kind == kind)
    }

    /// The kinds of `family` (`get sources all`), in `get all` order.
    pub fn of_family(family: Family) -> impl Iterator<Item = &'static Kind> {
        KINDS.iter().filter(move |k| k.family == Some(family))
    }

    /// The command-line name for a verb (`get` prints plurals).
    pub fn cli_name(&self, get: bool) -> &'static str {
        if get { self.get_name } else { self.name }
    }

    /// The other spellings accepted for a verb: the singular or plural the
    /// verb does not use, and the short names.
    pub fn cli_aliases(&self, get: bool) -> Vec<&'static str> {
        let mut aliases: Vec<&'static str> = self.aliases.to_vec();
        let other = self.cli_name(!get);
        if other != self.cli_name(get) {
            aliases.push(other);
        }
        aliases
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_family() {
        for get in [true, false] {
            let mut seen = std::collections::BTreeSet::new();
            for kind in KINDS {
                let family = kind.family.map(|f| f.word(get));
                for name in std::iter::once(kind.cli_name(get)).chain(kind.cli_aliases(get)) {
                    assert!(seen.insert((family, name)), "{family:?} {name}");
                }
            }
        }
    }
}
