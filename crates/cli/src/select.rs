//! The `<kind> [name]` part of every verb, built from [`KINDS`]: each verb
//! gets one subcommand per kind it accepts (`source git`, `kustomization`
//! alias `ks`, ...), so `--help`, aliases and shell completion all come from
//! the one table. clap's `Subcommand` is implemented by hand because the
//! subcommands are generated, not written out per kind.

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::kinds::{Family, KINDS, Kind};

/// The verbs that take a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Reconcile,
    Suspend,
    Resume,
    Export,
    Delete,
}

impl Verb {
    fn accepts(self, kind: &Kind) -> bool {
        match self {
            Verb::Get | Verb::Export | Verb::Delete => true,
            Verb::Reconcile => kind.reconcilable,
            Verb::Suspend | Verb::Resume => kind.suspendable,
        }
    }

    fn is_get(self) -> bool {
        self == Verb::Get
    }

    /// How many names the verb takes: (min, max).
    fn names(self) -> (usize, Option<usize>) {
        match self {
            Verb::Get | Verb::Export => (0, Some(1)),
            Verb::Reconcile | Verb::Delete => (1, Some(1)),
            Verb::Suspend | Verb::Resume => (0, None),
        }
    }

    fn about(self, kind: &Kind) -> String {
        let what = kind.kind;
        match self {
            Verb::Get => format!("Get {what} statuses"),
            Verb::Reconcile => format!("Reconcile a {what}"),
            Verb::Suspend => format!("Suspend reconciliation of {what}"),
            Verb::Resume => format!("Resume a suspended {what}"),
            Verb::Export => format!("Export {what} resources in YAML format"),
            Verb::Delete => format!("Delete a {what} resource"),
        }
    }
}

/// What the command line selected.
#[derive(Clone, Debug)]
pub enum Selection {
    /// One kind.
    One(&'static Kind),
    /// `get all`: every kind.
    All,
    /// `get sources all` / `get images all`.
    Family(Family),
}

impl Selection {
    /// The kinds selected, in `get all` order.
    pub fn kinds(&self) -> Vec<&'static Kind> {
        match self {
            Selection::One(kind) => vec![kind],
            Selection::All => KINDS.iter().collect(),
            Selection::Family(family) => Kind::of_family(*family).collect(),
        }
    }

    /// Whether several kinds are printed together (names get a `kind/` prefix).
    pub fn is_many(&self) -> bool {
        !matches!(self, Selection::One(_))
    }
}

/// A verb's kind, names and per-kind flags.
#[derive(Clone, Debug)]
pub struct Target {
    pub selection: Selection,
    pub names: Vec<String>,
    /// `reconcile --with-source` (kinds with a source only).
    pub with_source: bool,
    /// `reconcile helmrelease --force`.
    pub force: bool,
    /// `reconcile helmrelease --reset`.
    pub reset: bool,
}

impl Target {
    /// The one kind; `None` for `get all` and `get sources all`.
    pub fn kind(&self) -> Option<&'static Kind> {
        match self.selection {
            Selection::One(kind) => Some(kind),
            _ => None,
        }
    }
}

fn leaf(verb: Verb, kind: &'static Kind) -> Command {
    let get = verb.is_get();
    let (min, max) = verb.names();
    let mut name = Arg::new("name")
        .value_name("NAME")
        .help("Name of the object")
        .required(min > 0);
    if max != Some(1) {
        name = name
            .help("Names of the objects")
            .num_args(min..)
            .action(ArgAction::Append);
    }
    let mut cmd = Command::new(kind.cli_name(get))
        .visible_aliases(kind.cli_aliases(get))
        .about(verb.about(kind))
        .arg(name);
    if verb == Verb::Reconcile && kind.source != crate::kinds::SourceOf::None {
        cmd = cmd.arg(
            Arg::new("with-source")
                .long("with-source")
                .action(ArgAction::SetTrue)
                .help(format!(
                    "Reconcile the {} source first and wait for it",
                    kind.kind
                )),
        );
    }
    if verb == Verb::Reconcile && kind.force_and_reset {
        cmd = cmd
            .arg(
                Arg::new("force")
                    .long("force")
                    .action(ArgAction::SetTrue)
                    .help("Force a one-off install or upgrade (reconcile.fluxcd.io/forceAt)"),
            )
            .arg(
                Arg::new("reset")
                    .long("reset")
                    .action(ArgAction::SetTrue)
                    .help("Reset the failure count (reconcile.fluxcd.io/resetAt)"),
            );
    }
    cmd
}

fn all_command(about: &'static str) -> Command {
    Command::new("all").about(about)
}

/// Adds one subcommand per kind `verb` accepts to `cmd`.
pub fn augment(verb: Verb, mut cmd: Command) -> Command {
    let get = verb.is_get();
    for family in [Family::Source, Family::Image] {
        let mut group = Command::new(family.word(get))
            .visible_alias(family.alias(get))
            .about(match family {
                Family::Source => "Sources (Git, OCI, Helm, chart, bucket)",
                Family::Image => "Image automation objects",
            })
            .subcommand_required(true)
            .arg_required_else_help(true);
        if get {
            group = group.subcommand(all_command(match family {
                Family::Source => "Get all source statuses",
                Family::Image => "Get all image statuses",
            }));
        }
        let mut any = false;
        for kind in Kind::of_family(family).filter(|k| verb.accepts(k)) {
            group = group.subcommand(leaf(verb, kind));
            any = true;
        }
        if any {
            cmd = cmd.subcommand(group);
        }
    }
    for kind in KINDS
        .iter()
        .filter(|k| k.family.is_none() && verb.accepts(k))
    {
        cmd = cmd.subcommand(leaf(verb, kind));
    }
    if get {
        cmd = cmd.subcommand(all_command("Get all resources and statuses"));
    }
    cmd.subcommand_required(true).arg_required_else_help(true)
}

fn flag(matches: &ArgMatches, id: &str) -> bool {
    matches
        .try_get_one::<bool>(id)
        .ok()
        .flatten()
        .copied()
        .unwrap_or(false)
}

fn from_leaf(kind: &'static Kind, matches: &ArgMatches) -> Target {
    Target {
        selection: Selection::One(kind),
        names: matches
            .get_many::<String>("name")
            .map(|names| names.cloned().collect())
            .unwrap_or_default(),
        with_source: flag(matches, "with-source"),
        force: flag(matches, "force"),
        reset: flag(matches, "reset"),
    }
}

fn without_names(selection: Selection) -> Target {
    Target {
        selection,
        names: Vec::new(),
        with_source: false,
        force: false,
        reset: false,
    }
}

/// Reads what [`augment`] added back from the verb's matches.
pub fn from_matches(verb: Verb, matches: &ArgMatches) -> Result<Target, clap::Error> {
    let get = verb.is_get();
    let missing = || clap::Error::new(clap::error::ErrorKind::MissingSubcommand);
    let (name, sub) = matches.subcommand().ok_or_else(missing)?;
    if name == "all" {
        return Ok(without_names(Selection::All));
    }
    for family in [Family::Source, Family::Image] {
        if name == family.word(get) {
            let (name, sub) = sub.subcommand().ok_or_else(missing)?;
            if name == "all" {
                return Ok(without_names(Selection::Family(family)));
            }
            let kind = Kind::of_family(family)
                .find(|k| k.cli_name(get) == name)
                .ok_or_else(missing)?;
            return Ok(from_leaf(kind, sub));
        }
    }
    let kind = KINDS
        .iter()
        .find(|k| k.family.is_none() && k.cli_name(get) == name)
        .ok_or_else(missing)?;
    Ok(from_leaf(kind, sub))
}

/// Whether `name` is one of the subcommands [`augment`] adds for `verb`.
pub fn has_subcommand(verb: Verb, name: &str) -> bool {
    augment(verb, Command::new("probe"))
        .get_subcommands()
        .any(|c| c.get_name() == name || c.get_all_aliases().any(|a| a == name))
}

/// Declares a clap `Subcommand` type for a verb's kinds.
macro_rules! verb_target {
    ($name:ident, $verb:expr) => {
        /// The kind and names given to this verb.
        #[derive(Clone, Debug)]
        pub struct $name(pub $crate::select::Target);

        impl clap::FromArgMatches for $name {
            fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
                $crate::select::from_matches($verb, matches).map($name)
            }

            fn update_from_arg_matches(
                &mut self,
                matches: &clap::ArgMatches,
            ) -> Result<(), clap::Error> {
                *self = Self::from_arg_matches(matches)?;
                Ok(())
            }
        }

        impl clap::Subcommand for $name {
            fn augment_subcommands(cmd: clap::Command) -> clap::Command {
                $crate::select::augment($verb, cmd)
            }

            fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
                $crate::select::augment($verb, cmd)
            }

            fn has_subcommand(name: &str) -> bool {
                $crate::select::has_subcommand($verb, name)
            }
        }
    };
}
pub(crate) use verb_target;
