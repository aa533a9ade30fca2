//! An ordered list of resources with kustomize's id rules.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::resid::ResId;
use crate::resource::{Behavior, ORIGIN_ANNOTATION, Resource};
use crate::selector::Selector;

/// What `ResId::equals` compares: gvk, name and effective namespace.
#[derive(Hash, PartialEq, Eq)]
struct IdKey {
    group: String,
    version: String,
    kind: String,
    name: String,
    namespace: String,
}

impl IdKey {
    fn of(id: &ResId) -> IdKey {
        IdKey {
            group: id.gvk.group.clone(),
            version: id.gvk.version.clone(),
            kind: id.gvk.kind.clone(),
            name: id.name.clone(),
            namespace: id.effective_namespace().to_string(),
        }
    }
}

/// Resources in build order.
#[derive(Clone, Debug, Default)]
pub struct ResMap {
    list: Vec<Resource>,
}

impl ResMap {
    /// An empty map.
    pub fn new() -> ResMap {
        ResMap::default()
    }

    /// The number of resources.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are no resources.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The resources, in order.
    pub fn resources(&self) -> &[Resource] {
        &self.list
    }

    /// The resources, in order, for changing in place.
    pub fn resources_mut(&mut self) -> &mut [Resource] {
        &mut self.list
    }

    /// The resources, in order.
    pub fn into_resources(self) -> Vec<Resource> {
        self.list
    }

    /// Replaces the whole list (used by transformers that rebuild it).
    pub fn set_resources(&mut self, list: Vec<Resource>) {
        self.list = list;
    }

    /// Appends, refusing a resource whose current id is already present.
    pub fn append(&mut self, res: Resource) -> Result<()> {
        let id = res.cur_id();
        if self.list.iter().any(|r| id.equals(&r.cur_id())) {
            return Err(Error::DuplicateId { id: id.to_string() });
        }
        self.list.push(res);
        Ok(())
    }

    /// Appends every resource of `other`, refusing ids already present.
    pub fn append_all(&mut self, other: ResMap) -> Result<()> {
        self.extend_checked(other.list)
    }

    /// Appends many resources with one pass over the existing ids (the
    /// same checks as calling `append` for each, without its quadratic cost).
    pub fn extend_checked(&mut self, list: Vec<Resource>) -> Result<()> {
        let mut seen: HashSet<IdKey> = self.list.iter().map(|r| IdKey::of(&r.cur_id())).collect();
        for r in list {
            let id = r.cur_id();
            if !seen.insert(IdKey::of(&id)) {
                return Err(Error::DuplicateId { id: id.to_string() });
            }
            self.list.push(r);
        }
        Ok(())
    }

    /// The first id that two resources share, if any.
    pub fn first_duplicate_id(&self) -> Option<ResId> {
        let mut seen: HashSet<IdKey> = HashSet::with_capacity(self.list.len());
        for r in self.list.iter().filter(|r| !r.as_map().is_empty()) {
            let id = r.cur_id();
            if !seen.insert(IdKey::of(&id)) {
                return Some(id);
            }
        }
        None
    }

    /// Indices of resources matching `id` by any of their ids (current or
    /// previous), skipping empty ones.
    pub fn matching_by_any_id(&self, matches: impl Fn(&ResId) -> bool) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, r) in self.list.iter().enumerate() {
            if r.as_map().is_empty() {
                continue;
            }
            let cur = r.cur_id();
            if r.prev_ids().iter().any(&matches) || matches(&cur) {
                out.push(i);
            }
        }
        out
    }

    /// Indices of resources whose current id matches.
    pub fn matching_by_current_id(&self, matches: impl Fn(&ResId) -> bool) -> Vec<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, r)| matches(&r.cur_id()))
            .map(|(i, _)| i)
            .collect()
    }

    /// The single resource any of whose ids equals `id`.
    pub fn index_by_any_id(&self, id: &ResId) -> Result<usize> {
        let found = self.matching_by_any_id(|x| id.equals(x));
        match found.len() {
            1 => Ok(found[0]),
            0 => Err(Error::resource(format!(
                "no matches for Id {id}; failed to find unique target for patch {id}"
            ))),
            _ => Err(Error::resource(format!(
                "multiple matches for Id {id}; failed to find unique target for patch {id}"
            ))),
        }
    }

    /// The resource at index `i`.
    pub fn get(&self, i: usize) -> Option<&Resource> {
        self.list.get(i)
    }

    /// The resource at index `i`, for changing in place.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Resource> {
        self.list.get_mut(i)
    }

    /// Adds generated resources: create, or merge into / replace an existing
    /// one according to the generator behaviour.
    pub fn absorb_all(&mut self, other: ResMap) -> Result<()> {
        for r in other.list {
            self.append_replace_or_merge(r)?;
        }
        Ok(())
    }

    fn append_replace_or_merge(&mut self, mut res: Resource) -> Result<()> {
        let id = res.cur_id();
        let matches = self.matching_by_any_id(|x| id.equals(x));
        match matches.len() {
            0 => match res.behavior() {
                Behavior::Merge | Behavior::Replace => Err(Error::generator(format!(
                    "id {id} does not exist; cannot merge or replace"
                ))),
                _ => self.append(res),
            },
            1 => {
                let index = matches[0];
                let old = self.list[index].clone();
                match res.behavior() {
                    Behavior::Replace => res.copy_merge_metadata_from(&old),
                    Behavior::Merge => {
                        res.copy_merge_metadata_from(&old);
                        res.merge_data_maps_from(&old);
                        // kustomize keeps where the merged-into object came from.
                        if let Some(origin) = old.annotations().get(ORIGIN_ANNOTATION) {
                            res.set_annotation(ORIGIN_ANNOTATION, origin);
                        }
                    }
                    b => {
                        return Err(Error::generator(format!(
                            "id {id} exists; can not use behavior: '{}', behavior must be merge or replace",
                            b.as_str()
                        )));
                    }
                }
                // kustomize replaces the entry whose current id matches.
                let new_id = res.cur_id();
                let same: Vec<usize> = self.matching_by_current_id(|x| new_id.equals(x));
                match same.as_slice() {
                    [i] if *i == index => {
                        self.list[index] = res;
                        Ok(())
                    }
                    [] => Err(Error::generator(format!(
                        "cannot find resource with id {new_id} to replace"
                    ))),
                    _ => Err(Error::generator("unexpected target index in replacement")),
                }
            }
            _ => Err(Error::generator(format!(
                "found multiple objects that could accept merge of {id}"
            ))),
        }
    }

    /// Resources matched by a patch/replacement selector.
    pub fn select(&self, s: &Selector) -> Result<Vec<usize>> {
        let matcher = s.compile()?;
        let mut out = Vec::new();
        for (i, r) in self.list.iter().enumerate() {
            // Cheapest checks first; ids are only built when needed.
            if !matcher.match_gvk(&r.gvk_unscoped()) {
                continue;
            }
            if matcher.has_name() && !matcher.has_namespace() {
                if !matcher.match_name(&r.org_name()) && !matcher.match_name(&r.name()) {
                    continue;
                }
            } else if matcher.has_name() || matcher.has_namespace() {
                let cur = r.cur_id();
                let org = r.org_id();
                if !matcher.match_namespace(org.effective_namespace())
                    && !matcher.match_namespace(cur.effective_namespace())
                {
                    continue;
                }
                if !matcher.match_name(&org.name) && !matcher.match_name(&cur.name) {
                    continue;
                }
            }
            if matcher.has_labels() && !matcher.match_labels(&r.labels())? {
                continue;
            }
            if matcher.has_annotations() && !matcher.match_annotations(&r.annotations())? {
                continue;
            }
            out.push(i);
        }
        Ok(out)
    }

    /// Removes resources for which `keep` is false.
    pub fn retain(&mut self, keep: impl FnMut(&Resource) -> bool) {
        self.list.retain(keep);
    }

    /// Removes the internal annotations kustomize uses during a build.
    pub fn remove_build_annotations(&mut self) {
        for r in &mut self.list {
            r.remove_build_annotations();
        }
    }
}
