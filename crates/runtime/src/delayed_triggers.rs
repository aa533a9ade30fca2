//! Reconcile triggers held back for a while and coalesced, for
//! [`ControllerBuilder::watches_delayed`](crate::manager::ControllerBuilder::watches_delayed).
//!
//! kube's controller runs a trigger as soon as it arrives (its scheduler only
//! delays what a reconciliation asked for with `Action::requeue`), so a kind
//! that wants several changes of a related object gathered into one run
//! (ImageUpdateAutomation's `policyChangeDelay`: one commit for image updates
//! arriving together) needs the triggers held back before they reach it.

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::runtime::reflector::ObjectRef;
use tokio_util::time::DelayQueue;

use crate::manager::Object;

/// A stream of triggers, each with how long to hold it back, turned into the
/// stream of objects to reconcile now.
///
/// A trigger without a delay passes at once. A delayed trigger is released
/// once its delay has passed since it arrived; further delayed triggers of
/// the same object in the meantime are absorbed (the window is counted from
/// the first one and never extended, so a steady flow of changes still
/// reconciles once per delay).
pub(crate) struct DelayedTriggers<K: Object> {
    /// The incoming triggers; `None` once that stream ended.
    incoming: Option<BoxStream<'static, (ObjectRef<K>, Option<Duration>)>>,
    /// The objects with a trigger held back.
    held: HashSet<ObjectRef<K>>,
    /// Their release times.
    queue: DelayQueue<ObjectRef<K>>,
}

impl<K: Object> DelayedTriggers<K> {
    pub(crate) fn new(incoming: BoxStream<'static, (ObjectRef<K>, Option<Duration>)>) -> Self {
        Self {
            incoming: Some(incoming),
            held: HashSet::new(),
            queue: DelayQueue::new(),
        }
    }
}

impl<K: Object> Stream for DelayedTriggers<K> {
    type Item = ObjectRef<K>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        while let Some(incoming) = this.incoming.as_mut() {
            match incoming.poll_next_unpin(cx) {
                Poll::Ready(Some((obj, None))) => return Poll::Ready(Some(obj)),
                Poll::Ready(Some((obj, Some(delay)))) => {
                    if this.held.insert(obj.clone()) {
                        this.queue.insert(obj, delay);
                    }
                }
                Poll::Ready(None) => this.incoming = None,
                Poll::Pending => break,
            }
        }
        match this.queue.poll_expired(cx) {
            Poll::Ready(Some(expired)) => {
                let obj = expired.into_inner();
                this.held.remove(&obj);
                Poll::Ready(Some(obj))
            }
            // Nothing held: done only once nothing more can arrive.
            Poll::Ready(None) if this.incoming.is_none() => Poll::Ready(None),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use futures::channel::mpsc;
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn cm(name: &str) -> ObjectRef<ConfigMap> {
        ObjectRef::new(name).within("ns")
    }

    #[tokio::test]
    async fn delayed_triggers_of_one_object_coalesce_and_others_pass_at_once() {
        let (send, receive) = mpsc::unbounded();
        let mut triggers = DelayedTriggers::new(receive.boxed());
        let start = Instant::now();
        let delay = Duration::from_millis(1000);

        // Three changes of `a` within its window, and `b` undelayed.
        send.unbounded_send((cm("a"), Some(delay))).unwrap();
        send.unbounded_send((cm("b"), None)).unwrap();
        assert_eq!(triggers.next().await, Some(cm("b")));
        assert!(start.elapsed() < delay);
        tokio::time::sleep(Duration::from_millis(300)).await;
        send.unbounded_send((cm("a"), Some(delay))).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        send.unbounded_send((cm("a"), Some(delay))).unwrap();

        // `a` once, a delay after its first change (its last one would
        // release it at 1.6 s).
        assert_eq!(triggers.next().await, Some(cm("a")));
        let released = start.elapsed();
        assert!(
            released >= delay && released < Duration::from_millis(1450),
            "{released:?}"
        );

        // A change after the release opens a new window.
        send.unbounded_send((cm("a"), Some(delay))).unwrap();
        drop(send);
        assert_eq!(triggers.next().await, Some(cm("a")));
        assert!(start.elapsed() >= released + delay);
        // The input ended and nothing is held: the stream ends.
        assert_eq!(triggers.next().await, None);
    }
}
