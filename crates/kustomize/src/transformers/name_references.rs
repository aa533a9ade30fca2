//! Name back-references: after prefixes, suffixes and hashes renamed
//! resources, fields that refer to them by name (a ConfigMap volume, a
//! RoleBinding subject, an Ingress backend, ...) are updated to the new
//! names. Follows kustomize's `nameref` filter, including how it narrows
//! candidates (previous names, kind, roleRef group, namespace, and matching
//! prefixes/suffixes).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldspec::{self, CreateKind, FieldSpec, untagged_scalar};
use crate::resid::{Gvk, ResId, TOTALLY_NOT_A_NAMESPACE};
use crate::resmap::ResMap;
use crate::resource::{Resource, scalar_text};
use crate::transformer_config::NameBackReferences;

/// What the filter needs to know about a possible referral target.
struct Candidate {
    name: String,
    namespace: String,
    kind: String,
    cur_id: ResId,
    prev_ids: Vec<ResId>,
    org_effective_ns: String,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

impl Candidate {
    fn of(r: &Resource) -> Candidate {
        let org = r.org_id();
        Candidate {
            name: r.name(),
            namespace: r.namespace(),
            kind: r.kind(),
            cur_id: r.cur_id(),
            prev_ids: r.prev_ids(),
            org_effective_ns: org.effective_namespace().to_string(),
            prefixes: r.name_prefixes(),
            suffixes: r.name_suffixes(),
        }
    }
}

fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.is_empty() || long[long.len() - short.len()..] == *short
}

fn prefix_suffix_equal(c: &Candidate, referrer: &Candidate, allow_empty: bool) -> bool {
    let p = (c.prefixes.is_empty() || referrer.prefixes.is_empty()) && allow_empty
        || same_ending(&c.prefixes, &referrer.prefixes);
    let s = (c.suffixes.is_empty() || referrer.suffixes.is_empty()) && allow_empty
        || same_ending(&c.suffixes, &referrer.suffixes);
    p && s
}

struct Referral<'a> {
    referrer: &'a Candidate,
    spec: &'a FieldSpec,
    target: Gvk,
    role_ref: Option<Gvk>,
    /// Every resource, and which of them this referrer may refer to.
    all: &'a [Candidate],
    in_subset: &'a [bool],
    /// Resources by each of their previous names, in resource order.
    by_prev_name: &'a HashMap<String, Vec<usize>>,
}

impl<'a> Referral<'a> {
    /// Candidates of this referrer (optionally narrowed further) that were
    /// once called `old_name`, in resource order.
    fn named(&self, old_name: &str, keep: &dyn Fn(&Candidate) -> bool) -> Vec<&'a Candidate> {
        self.by_prev_name
            .get(old_name)
            .map(|idx| {
                idx.iter()
                    .filter(|&&j| self.in_subset[j] && keep(&self.all[j]))
                    .map(|&j| &self.all[j])
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Narrows candidates already matching the old name to one referral.
    fn select(
        &self,
        candidates: Vec<&'a Candidate>,
        identical: fn(&[&Candidate]) -> bool,
    ) -> Result<Option<&'a Candidate>> {
        let mut c: Vec<&Candidate> = candidates
            .into_iter()
            .filter(|r| r.prev_ids.iter().any(|id| id.gvk.is_selected(&self.target)))
            .collect();
        if let Some(rr) = &self.role_ref {
            c.retain(|r| r.prev_ids.iter().any(|id| id.gvk.is_selected(rr)));
        }
        let referrer_id = &self.referrer.cur_id;
        if !referrer_id.is_cluster_scoped() {
            c.retain(|r| {
                r.cur_id.is_cluster_scoped()
                    || r.kind == "ServiceAccount"
                    || referrer_id.is_ns_equals(&r.cur_id)
            });
        }
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|r| prefix_suffix_equal(r, self.referrer, true));
        if c.len() > 1 {
            c.retain(|r| prefix_suffix_equal(r, self.referrer, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(c[0])),
            _ if identical(&c) => Ok(Some(c[0])),
            _ => {
                let ids: Vec<String> = c.iter().map(|r| r.cur_id.to_string()).collect();
                Err(Error::transformer(format!(
                    "found multiple possible referrals: {}",
                    ids.join(", ")
                )))
            }
        }
    }

    fn set_scalar(&self, node: &mut Value) -> Result<()> {
        let old = scalar_text(node);
        if let Some(r) = self.select(self.named(&old, &|_| true), all_names_same)?
            && r.name != old
        {
            *node = untagged_scalar(&r.name);
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Value) -> Result<()> {
        let Value::Object(m) = node else {
            return Err(Error::transformer("expect a mapping node"));
        };
        let Some(name) = m.get("name") else {
            return Err(Error::transformer(
                "path config error; no 'name' field in node",
            ));
        };
        let old = scalar_text(name);
        let candidates: Vec<&Candidate> = match m.get("namespace") {
            None => self.named(&old, &|_| true),
            Some(ns) => {
                let ns = scalar_text(ns);
                // By original namespace if any candidate has it, else by
                // current namespace (cluster-scoped resources never match).
                let by_org = |c: &Candidate| {
                    c.org_effective_ns != TOTALLY_NOT_A_NAMESPACE && c.org_effective_ns == ns
                };
                let any_org = self
                    .in_subset
                    .iter()
                    .zip(self.all)
                    .any(|(&inside, c)| inside && by_org(c));
                if any_org {
                    self.named(&old, &by_org)
                } else {
                    self.named(&old, &|c: &Candidate| {
                        let eff = c.cur_id.effective_namespace();
                        eff != TOTALLY_NOT_A_NAMESPACE && eff == ns
                    })
                }
            }
        };
        let Some(r) = self.select(candidates, all_names_and_namespaces_same)? else {
            return Ok(());
        };
        if r.name == old && r.namespace.is_empty() {
            return Ok(());
        }
        m.insert("name".into(), untagged_scalar(&r.name));
        if !r.namespace.is_empty() {
            m.insert("namespace".into(), untagged_scalar(&r.namespace));
        }
        Ok(())
    }

    fn set(&self, node: &mut Value) -> Result<()> {
        match node {
            Value::Null => Ok(()),
            Value::Object(_) => self.set_mapping(node),
            Value::Array(items) => {
                for item in items.iter_mut() {
                    match item {
                        Value::Null => {}
                        Value::Object(_) => self.set_mapping(item)?,
                        Value::Array(_) => {
                            return Err(Error::transformer(
                                "node is expected to be either a string or a map of string",
                            ));
                        }
                        _ => self.set_scalar(item)?,
                    }
                }
                Ok(())
            }
            _ => self.set_scalar(node),
        }
    }

    fn describe(&self) -> String {
        format!(
            "updating name reference in '{}' field of '{}'",
            self.spec.path, self.referrer.cur_id
        )
    }
}

fn all_names_same(c: &[&Candidate]) -> bool {
    c.iter().all(|r| r.name == c[0].name)
}

fn all_names_and_namespaces_same(c: &[&Candidate]) -> bool {
    c.iter()
        .all(|r| r.name == c[0].name && r.namespace == c[0].namespace)
}

/// The referrer's `roleRef` group and kind, when it has them.
fn role_ref_gvk(r: &Resource) -> Option<Gvk> {
    let rr = r.as_map().get("roleRef")?.as_object()?;
    let group = rr.get("apiGroup")?;
    let kind = rr.get("kind")?;
    Some(Gvk::unscoped(scalar_text(group), "", scalar_text(kind)))
}

/// Resources a referrer may refer to (kustomize's
/// `SubsetThatCouldBeReferencedByResource`).
fn subset_for(referrer: &Resource, all: &[Candidate]) -> Vec<bool> {
    let rid = referrer.cur_id();
    if rid.is_cluster_scoped() {
        return vec![true; all.len()];
    }
    let mut rb_namespaces: HashSet<String> = HashSet::new();
    if referrer.kind() == "RoleBinding"
        && let Some(Value::Array(subjects)) = referrer.as_map().get("subjects")
    {
        for s in subjects {
            if let Some(m) = s.as_object()
                && m.get("kind").map(scalar_text).as_deref() == Some("ServiceAccount")
                && let Some(ns) = m.get("namespace")
            {
                rb_namespaces.insert(scalar_text(ns));
            }
        }
    }
    all.iter()
        .map(|c| {
            c.cur_id.is_cluster_scoped()
                || c.cur_id.is_ns_equals(&rid)
                || rb_namespaces.contains(&c.namespace)
        })
        .collect()
}

/// Updates every name reference in the resource map.
pub fn fix(m: &mut ResMap, backrefs: &[NameBackReferences]) -> Result<()> {
    let all: Vec<Candidate> = m.resources().iter().map(Candidate::of).collect();
    let mut by_prev_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (j, c) in all.iter().enumerate() {
        let mut names: Vec<&str> = c.prev_ids.iter().map(|id| id.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            by_prev_name.entry(n.to_string()).or_default().push(j);
        }
    }
    let org_gvks: Vec<Gvk> = m.resources().iter().map(|r| r.org_id().gvk).collect();
    // Filters per referrer, in back-reference order.
    let mut filters: Vec<Vec<(FieldSpec, Gvk)>> = vec![Vec::new(); all.len()];
    for br in backrefs {
        let target = br.gvk();
        for spec in &br.referrers {
            let sel = spec.gvk();
            for (i, g) in org_gvks.iter().enumerate() {
                if g.is_selected(&sel) {
                    filters[i].push((spec.clone(), target.clone()));
                }
            }
        }
    }
    for (i, fl) in filters.into_iter().enumerate() {
        if fl.is_empty() {
            continue;
        }
        let Some(res) = m.get_mut(i) else { continue };
        let in_subset = subset_for(res, &all);
        let referrer = &all[i];
        for (spec, target) in &fl {
            let role_ref = if spec.path.ends_with("roleRef/name") {
                role_ref_gvk(res)
            } else {
                None
            };
            let referral = Referral {
                referrer,
                spec,
                target: target.clone(),
                role_ref,
                all: &all,
                in_subset: &in_subset,
                by_prev_name: &by_prev_name,
            };
            // The spec applies to the referrer's own gvk: only the path counts.
            let path_only = FieldSpec {
                path: spec.path.clone(),
                ..FieldSpec::default()
            };
            fieldspec::apply(
                res.as_map_mut(),
                &path_only,
                CreateKind::Nothing,
                &mut |node| referral.set(node),
            )
            .map_err(|e| e.context(referral.describe()))?;
        }
    }
    Ok(())
}
