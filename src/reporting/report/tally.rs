//! The counts behind one row of a report, and the figures computed from them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::fact::{Callback, Part};
use crate::sla::Outcome;

/// Counts over one period and key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub offered: u64,
    /// Answered or transferred out (served).
    pub answered: u64,
    pub transferred_out: u64,
    pub answered_within: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub failed: u64,
    pub overflowed: u64,
    wait_sum_ms: i64,
    /// Waits of the answered calls, in whole seconds rounded up → how many.
    waits: BTreeMap<u32, u32>,
    talk_sum_ms: i64,
    talked: u64,
    /// Ratings 1, 2, 3.
    pub ratings: [u64; 3],
    pub survey_eligible: u64,
    pub callbacks_pending: u64,
    pub callbacks_done: u64,
    pub callbacks_within_limit: u64,
    pub callbacks_given_up: u64,
    /// Hours (Unix ms / 1 h) with a call reaching a queue nobody staffed.
    pub uncovered: std::collections::BTreeSet<i64>,
    /// Callers (a number's calls within the repeat window count once).
    pub callers: u64,
    pub callers_answered_first_call: u64,
    pub callers_answered: u64,
}

impl Tally {
    /// Counts one part of a call.
    pub fn add(&mut self, p: &Part<'_>) {
        self.offered += 1;
        match p.outcome {
            Outcome::Answered => self.answered += 1,
            Outcome::TransferredOut => {
                self.answered += 1;
                self.transferred_out += 1;
            }
            Outcome::Abandoned => self.abandoned += 1,
            Outcome::ShortAbandoned => self.short_abandoned += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Overflowed => self.overflowed += 1,
        }
        self.answered_within += u64::from(p.answered_within && p.outcome.is_served());
        if p.outcome.is_served()
            && let Some(w) = p.wait_ms
        {
            self.wait_sum_ms += w;
            let secs = u32::try_from((w.max(0) + 999) / 1000).unwrap_or(u32::MAX);
            *self.waits.entry(secs).or_default() += 1;
        }
        if p.outcome.is_served()
            && let Some(t) = p.talk_ms
        {
            self.talk_sum_ms += t;
            self.talked += 1;
        }
        if let Some(s @ 1..=3) = p.survey {
            self.ratings[usize::from(s - 1)] += 1;
        }
        self.survey_eligible += u64::from(p.survey_eligible);
        match p.callback {
            Callback::None => {}
            Callback::Pending => self.callbacks_pending += 1,
            Callback::Done { within } => {
                self.callbacks_done += 1;
                self.callbacks_within_limit += u64::from(within);
            }
            Callback::GivenUp => self.callbacks_given_up += 1,
        }
        if let Some(h) = p.unstaffed_hour {
            self.uncovered.insert(h);
        }
    }

    /// Adds another tally's counts (a period's into the range's total).
    pub fn merge(&mut self, o: &Tally) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.transferred_out += o.transferred_out;
        self.answered_within += o.answered_within;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.failed += o.failed;
        self.overflowed += o.overflowed;
        self.wait_sum_ms += o.wait_sum_ms;
        for (&s, &c) in &o.waits {
            *self.waits.entry(s).or_default() += c;
        }
        self.talk_sum_ms += o.talk_sum_ms;
        self.talked += o.talked;
        for (a, b) in self.ratings.iter_mut().zip(o.ratings) {
            *a += b;
        }
        self.survey_eligible += o.survey_eligible;
        self.callbacks_pending += o.callbacks_pending;
        self.callbacks_done += o.callbacks_done;
        self.callbacks_within_limit += o.callbacks_within_limit;
        self.callbacks_given_up += o.callbacks_given_up;
        self.uncovered.extend(o.uncovered.iter().copied());
        self.callers += o.callers;
        self.callers_answered_first_call += o.callers_answered_first_call;
        self.callers_answered += o.callers_answered;
    }

    /// Offered minus short abandons: the rates' denominator.
    pub fn counted(&self) -> u64 {
        self.offered - self.short_abandoned
    }

    /// The nearest-rank 90th percentile of the answered calls' waits, in whole
    /// seconds rounded up.
    pub fn wait_p90_s(&self) -> Option<u32> {
        let n: u64 = self.waits.values().map(|&c| u64::from(c)).sum();
        if n == 0 {
            return None;
        }
        let rank = (n * 9).div_ceil(10);
        let mut seen = 0;
        for (&s, &c) in &self.waits {
            seen += u64::from(c);
            if seen >= rank {
                return Some(s);
            }
        }
        None
    }

    /// The figures a row shows.
    pub fn figures(&self) -> Figures {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let counted = self.counted();
        let surveyed: u64 = self.ratings.iter().sum();
        let waited: u64 = self.waits.values().map(|&c| u64::from(c)).sum();
        Figures {
            offered: self.offered,
            counted,
            answered: self.answered,
            transferred_out: self.transferred_out,
            answered_within: self.answered_within,
            abandoned: self.abandoned,
            short_abandoned: self.short_abandoned,
            failed: self.failed,
            overflowed: self.overflowed,
            answer_rate: ratio(self.answered, counted),
            answered_within_per_counted: ratio(self.answered_within, counted),
            answered_within_per_answered: ratio(self.answered_within, self.answered),
            wait_avg_s: (waited > 0).then(|| self.wait_sum_ms as f64 / 1000.0 / waited as f64),
            wait_p90_s: self.wait_p90_s(),
            talk_avg_s: (self.talked > 0)
                .then(|| self.talk_sum_ms as f64 / 1000.0 / self.talked as f64),
            surveyed,
            survey_eligible: self.survey_eligible,
            survey_response_rate: ratio(surveyed, self.survey_eligible),
            satisfied: self.ratings[0],
            basically_satisfied: self.ratings[1],
            dissatisfied: self.ratings[2],
            satisfied_share: ratio(self.ratings[0], surveyed),
            basically_satisfied_share: ratio(self.ratings[1], surveyed),
            dissatisfied_share: ratio(self.ratings[2], surveyed),
            callbacks_owed: self.callbacks_pending + self.callbacks_done + self.callbacks_given_up,
            callbacks_pending: self.callbacks_pending,
            callbacks_done: self.callbacks_done,
            callbacks_given_up: self.callbacks_given_up,
            uncovered_hours: self.uncovered.len() as u64,
            callbacks_within_limit: self.callbacks_within_limit,
            callbacks_within_limit_share: ratio(
                self.callbacks_within_limit,
                self.callbacks_pending + self.callbacks_done + self.callbacks_given_up,
            ),
            callers: self.callers,
            callers_answered_first_call: self.callers_answered_first_call,
            first_call_answer_rate: ratio(self.callers_answered_first_call, self.callers),
            callers_answered: self.callers_answered,
            caller_answer_rate: ratio(self.callers_answered, self.callers),
        }
    }
}

/// One row's figures. Field names are part of the API (docs/reports-api.md);
/// rates are fractions (0.953), `null` when their denominator is zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Calls offered to a person (on a queue: visits).
    pub offered: u64,
    /// Offered minus short-abandoned: the denominator of the rates.
    pub counted: u64,
    /// Answered by a person, including those then transferred out.
    pub answered: u64,
    pub transferred_out: u64,
    /// Answered within the service-level seconds (`answer_within_s`).
    pub answered_within: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub failed: u64,
    /// Left for another queue or seats (queue and seats dimensions only).
    pub overflowed: u64,
    /// 接通率: answered / counted.
    pub answer_rate: Option<f64>,
    /// 15秒接通率 as GB/T 33358 service level: answered within / counted.
    pub answered_within_per_counted: Option<f64>,
    /// 15秒接通率 as a share of answered calls: answered within / answered.
    pub answered_within_per_answered: Option<f64>,
    pub wait_avg_s: Option<f64>,
    /// Nearest rank, whole seconds rounded up.
    pub wait_p90_s: Option<u32>,
    pub talk_avg_s: Option<f64>,
    /// Calls with a rating.
    pub surveyed: u64,
    /// Calls the gateway asks to rate (see `CallFact::survey_eligible`).
    pub survey_eligible: u64,
    pub survey_response_rate: Option<f64>,
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub dissatisfied: u64,
    pub satisfied_share: Option<f64>,
    pub basically_satisfied_share: Option<f64>,
    pub dissatisfied_share: Option<f64>,
    /// Missed calls owed a callback: pending + done + given up.
    pub callbacks_owed: u64,
    pub callbacks_pending: u64,
    pub callbacks_done: u64,
    /// Given up after `[sla] callback_max_attempts` failed attempts.
    pub callbacks_given_up: u64,
    /// Called back within `[sla] callback_within_h` of the missed call's end.
    pub callbacks_within_limit: u64,
    /// callbacks_within_limit / callbacks_owed.
    pub callbacks_within_limit_share: Option<f64>,
    /// 7×24 coverage: hours in which a call reached a queue with nobody
    /// logged in (0 is full coverage).
    pub uncovered_hours: u64,
    /// Distinct callers: one number's calls within the repeat window count once
    /// (short abandons left out).
    pub callers: u64,
    pub callers_answered_first_call: u64,
    /// 一次接通率: callers answered at their first call / callers.
    pub first_call_answer_rate: Option<f64>,
    pub callers_answered: u64,
    /// Callers answered at some call of their window / callers.
    pub caller_answer_rate: Option<f64>,
}
