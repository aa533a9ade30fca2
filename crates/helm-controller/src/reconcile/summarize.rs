//! `Ready` summarised from the conditions the release loop owns
//! (`Remediated`, `TestSuccess`, `Released`), and the conditions of a
//! release found already in sync.

use api::meta::{ConditionStatus, condition_type};
use kube::Resource;

use super::Run;
use crate::release::{snapshot_chart, snapshot_full_name};
use crate::state::{ignore_test_failures, tests_enabled, truncate};

use super::release::*;

impl Run<'_> {
    /// In sync: trim the history, and turn a lingering `Remediated` into
    /// `Released` (the release already matches after a rollback).
    pub(super) fn in_sync(&mut self) {
        let ignore = ignore_test_failures(self.spec(), &self.session.status);
        if let Some(history) = self.session.status.history.as_mut() {
            truncate(history, ignore);
        }
        if self.session.conditions.is_true(condition_type::REMEDIATED)
            && let Some(current) = self.current()
        {
            let message = format!(
                "Helm upgrade succeeded for release {} with chart {}",
                snapshot_full_name(&current),
                snapshot_chart(&current)
            );
            let mut items = std::mem::take(&mut self.session.conditions).into_items();
            items.retain(|c| c.type_ != condition_type::RELEASED);
            for condition in &mut items {
                if condition.type_ == condition_type::REMEDIATED {
                    condition.type_ = condition_type::RELEASED.to_string();
                    condition.reason = UPGRADE_SUCCEEDED.to_string();
                    condition.message = message.clone();
                    condition.status = ConditionStatus::True.to_string();
                }
            }
            self.session.conditions =
                runtime::conditions::Conditions::new(items, self.hr.meta().generation);
        }
    }

    /// `Ready` from `Remediated`, `TestSuccess` (when tests count) and
    /// `Released`: the most recent of them, in that order of priority; a
    /// remediation always means not ready.
    pub(super) fn summarize(&mut self) {
        let tests = tests_enabled(self.spec());
        if !tests {
            self.session.conditions.delete(condition_type::TEST_SUCCESS);
        }
        let counts_tests = tests
            && !self
                .spec()
                .test
                .as_ref()
                .and_then(|t| t.ignore_failures)
                .unwrap_or(false);
        let order: &[&str] = if counts_tests {
            &[
                condition_type::REMEDIATED,
                condition_type::TEST_SUCCESS,
                condition_type::RELEASED,
            ]
        } else {
            &[condition_type::REMEDIATED, condition_type::RELEASED]
        };
        let mut best: Option<(i64, usize)> = None;
        for (priority, type_) in order.iter().enumerate() {
            if let Some(condition) = self.session.conditions.get(type_) {
                let generation = condition.observed_generation.unwrap_or(0);
                if best.is_none_or(|(g, _)| generation > g) {
                    best = Some((generation, priority));
                }
            }
        }
        let Some((_, priority)) = best else {
            return;
        };
        let Some(source) = self.session.conditions.get(order[priority]).cloned() else {
            return;
        };
        let status = if source.type_ == condition_type::REMEDIATED {
            ConditionStatus::False
        } else {
            ConditionStatus::of(&source.status)
        };
        if status == ConditionStatus::True {
            self.session.conditions.delete(condition_type::STALLED);
        }
        self.session.conditions.set(
            condition_type::READY,
            status,
            &source.reason,
            source.message,
        );
    }
}
