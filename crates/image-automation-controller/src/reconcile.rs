//! What the three kinds do around their own step: a pass ends in a
//! [`Success`] or a [`Halt`], and [`finish`] turns it into Flux's
//! conditions, writes the status once (nothing when nothing changed), sends
//! the events Flux sends and picks the next requeue.

use std::sync::Arc;

use api::meta::{FINALIZER, condition_type, reason};
use kube::runtime::controller::Action;
use runtime::reconcile::Disposition;
use runtime::status::{Conclusion, StatusObject, StatusSession};

use crate::Error;
use crate::context::{CONTROLLER_NAME, Context};

/// A pass that reached its goal.
#[derive(Debug)]
pub struct Success {
    /// The `Ready` message.
    pub message: String,
    /// When to come back.
    pub requeue: Action,
}

/// Why a pass stopped short: Flux's reason, the message a user acts on,
/// and whether it is retried, waits for another object, or stalls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    /// The reason on `Ready=False` (and `Stalled`).
    pub reason: &'static str,
    /// The message.
    pub message: String,
    /// Retry with backoff, wait for another object, or stall.
    pub disposition: Disposition,
}

impl Halt {
    /// A failure retried with the per-object backoff.
    pub fn retry(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            disposition: Disposition::Retry,
        }
    }

    /// A failure only a change of the spec can fix (`Stalled=True`).
    pub fn stall(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            disposition: Disposition::Stall,
        }
    }

    /// Another object is not ready; its change (or `--requeue-dependency`)
    /// brings the object back.
    pub fn wait(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            disposition: Disposition::WaitForDependency,
        }
    }
}

/// Runs `pass` on a live object under Flux's finalizer, nothing while
/// `suspended`; on deletion runs `cleanup` and lets the object go.
pub async fn reconcile_object<K, P, PF, C>(
    obj: Arc<K>,
    ctx: Arc<Context>,
    suspended: fn(&K) -> bool,
    pass: P,
    cleanup: C,
) -> Result<Action, Error>
where
    K: StatusObject + kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    P: FnOnce(Arc<K>, Arc<Context>, StatusSession<K>) -> PF,
    PF: std::future::Future<Output = Result<Action, Error>>,
    C: FnOnce(&K, &Context) -> Result<(), Error>,
{
    runtime::finalizer::reconcile_namespaced(
        &ctx.client,
        FINALIZER,
        obj,
        suspended,
        |obj, api| {
            let session = StatusSession::begin(obj.as_ref(), api, CONTROLLER_NAME);
            pass(obj, ctx.clone(), session)
        },
        |obj, _| {
            let result = cleanup(obj.as_ref(), &ctx);
            async move { result.map(|()| Action::await_change()) }
        },
    )
    .await
}

/// Records `result` in the conditions, writes the status, sends events and
/// says what the harness does next.
pub async fn finish<K: StatusObject>(
    obj: &K,
    ctx: &Context,
    mut session: StatusSession<K>,
    result: Result<Success, Halt>,
) -> Result<Action, Error> {
    let was_ready = session.conditions.is_true(condition_type::READY);
    let previous = session
        .conditions
        .get(condition_type::READY)
        .map(|c| c.message.clone());
    match &result {
        Ok(success) => session
            .conditions
            .mark_ready(reason::SUCCEEDED, success.message.clone()),
        Err(halt) if halt.disposition == Disposition::Stall => session
            .conditions
            .mark_stalled(halt.reason, halt.message.clone()),
        Err(halt) => session
            .conditions
            .mark_failed_retrying(halt.reason, halt.message.clone()),
    }
    session.conclude(Conclusion::WhenSettled);
    session.patch().await?;

    match result {
        Ok(success) => {
            // Flux announces a new Ready message (new tags, a new latest
            // image, a recovery), not every pass.
            if !was_ready || previous.as_deref() != Some(success.message.as_str()) {
                ctx.recorder
                    .normal(obj, reason::SUCCEEDED, &success.message)
                    .await;
            }
            Ok(success.requeue)
        }
        Err(halt) => {
            if previous.as_deref() != Some(halt.message.as_str()) {
                ctx.recorder.warning(obj, halt.reason, &halt.message).await;
            }
            match halt.disposition {
                Disposition::Stall => Ok(Action::await_change()),
                disposition => Err(Error::Halted {
                    disposition,
                    message: halt.message,
                }),
            }
        }
    }
}
