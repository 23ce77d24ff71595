//! Hedged requests inside the loop: the first call races a call to the next target once it has been
//! slow for the hedge delay; the first answer (first content chunk for streams) wins.

use std::time::Duration;

use tokio::time::Instant;

use super::{InFlight, Mode, Run, Target};
use crate::breaker::Admission;
use crate::error::Error;
use crate::hedge::HedgeAfter;

/// How a hedged race ended.
pub(super) enum Raced<'a, O> {
    /// The first call's own result; no hedge runs any more.
    Own(Result<O, Error>),
    /// The hedge answered first with this; the first call is to be cancelled.
    HedgeWon(InFlight<'a, O>, O),
    /// The first call failed while the hedge still runs.
    OwnFailed(Error, InFlight<'a, O>),
}

impl<'a, M: Mode> Run<'a, M> {
    /// The target to hedge this first call with, and when, if hedging applies.
    pub(super) fn hedge_plan(&self, target: &Target<'_>, rest: &'a [Target<'a>]) -> Option<(&'a Target<'a>, Duration)> {
        let hedge = self.policy.hedge.as_ref()?;
        // The partner first: a route with one target (the common case) never needs the p95.
        let partner = rest.iter().find(|t| self.unfit(t, None).is_none() && self.fields(t).is_ok())?;
        let after = match hedge.after {
            HedgeAfter::Fixed(after) => after,
            HedgeAfter::P95 { initial } => target.health.and_then(|h| h.latency.of(M::WHOLE).p95()).or(initial)?,
        };
        Some((partner, after))
    }

    /// Runs the first call; if it has not answered after `after`, calls `partner` too (budget and
    /// breaker permitting). The first answer wins.
    pub(super) async fn race(
        &mut self,
        own: &mut InFlight<'a, M::Output>,
        partner: &'a Target<'a>,
        after: Duration,
    ) -> Raced<'a, M::Output> {
        tokio::select! {
            biased;
            result = &mut own.call => return Raced::Own(result),
            () = tokio::time::sleep(after) => {}
        }
        let Some(hedge) = &self.policy.hedge else { return Raced::Own((&mut own.call).await) };
        if !hedge.budget.try_withdraw() {
            tracing::debug!(target_id = own.target.id, "hedge budget empty: not hedging");
            return Raced::Own((&mut own.call).await);
        }
        // The limits before the breaker, as for any call: a probe goes only to a call that is made.
        let now = Instant::now();
        let Ok(permit) = self.admit(partner, now) else { return Raced::Own((&mut own.call).await) };
        let probe = match partner.health.map(|h| h.breaker.admit()) {
            Some(Admission::Skip(_)) => {
                if let Some(permit) = permit {
                    permit.cancel();
                }
                return Raced::Own((&mut own.call).await);
            }
            Some(Admission::Probe(guard)) => Some(guard),
            None | Some(Admission::Call) => None,
        };
        tracing::info!(
            target_id = own.target.id,
            hedge = partner.id,
            after_ms = after.as_millis() as u64,
            "{} has not answered after {}ms: hedging with {}",
            own.target.id,
            after.as_millis(),
            partner.id
        );
        self.tracker.hedged(partner.slot);
        let mut theirs = self.start(partner, 0, probe, permit, now);
        theirs.hedge = true;
        // `biased`: on a tie the call that started first wins, so a hedge never replaces an answer in hand.
        let first = tokio::select! {
            biased;
            result = &mut own.call => Ok(result),
            result = &mut theirs.call => Err(result),
        };
        match first {
            Ok(Ok(output)) => {
                self.cancel(theirs, own.target.id);
                Raced::Own(Ok(output))
            }
            Ok(Err(error)) => Raced::OwnFailed(error, theirs),
            Err(Ok(output)) => Raced::HedgeWon(theirs, output),
            Err(Err(error)) => {
                let slot = theirs.target.slot;
                self.failed(theirs, &error);
                self.carried = Some((slot, error));
                Raced::Own((&mut own.call).await)
            }
        }
    }
}
