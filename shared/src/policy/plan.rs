//! An engine's condition plan: the predicates of all its policies numbered once, identical ones
//! (same field, operator, values and options) sharing a number, so a record tests each distinct
//! predicate at most once however many policies ask it (`ResultStatus` not failed, `ClientIP`
//! outside the corporate ranges, …). The answers live in a [`Memo`] made per record.

use super::condition::{Condition, Predicate, TenantContext};
use crate::audit::AuditRecord;
use std::collections::HashMap;

/// A condition tree with its predicates replaced by their numbers.
#[derive(Debug, Clone)]
enum Plan {
    All(Vec<Plan>),
    Any(Vec<Plan>),
    Not(Box<Plan>),
    Test(usize),
}

/// The plans of an engine's policies (in the engine's order) and their distinct predicates.
#[derive(Debug, Clone, Default)]
pub(super) struct Plans {
    tests: Vec<Predicate>,
    plans: Vec<Plan>,
}

/// One record's answers: per predicate number, whether it was tested and whether it held,
/// one bit each. A whole record's memo is two small bit sets (zeroed and moved cheaply: it is
/// made for every record); an engine with more than [`STACK_MEMO`] distinct predicates (never
/// seen in practice) spills to the heap.
pub(super) struct Memo {
    tested: Bits,
    held: Bits,
}

const STACK_MEMO: usize = 512;
const STACK_WORDS: usize = STACK_MEMO / 64;

enum Bits {
    Stack([u64; STACK_WORDS]),
    Heap(Vec<u64>),
}

impl Bits {
    fn new(count: usize) -> Self {
        if count <= STACK_MEMO { Self::Stack([0; STACK_WORDS]) } else { Self::Heap(vec![0; count.div_ceil(64)]) }
    }

    fn words(&mut self) -> &mut [u64] {
        match self {
            Self::Stack(words) => words,
            Self::Heap(words) => words,
        }
    }

    fn get(&mut self, number: usize) -> bool {
        self.words()[number / 64] & (1 << (number % 64)) != 0
    }

    fn set(&mut self, number: usize, on: bool) {
        let word = &mut self.words()[number / 64];
        if on {
            *word |= 1 << (number % 64);
        } else {
            *word &= !(1 << (number % 64));
        }
    }
}

impl Memo {
    /// The answer recorded for predicate `number`, if it was tested.
    fn answer(&mut self, number: usize) -> Option<bool> {
        if self.tested.get(number) { Some(self.held.get(number)) } else { None }
    }

    fn record(&mut self, number: usize, holds: bool) {
        self.tested.set(number, true);
        self.held.set(number, holds);
    }
}

impl Plans {
    /// The plans of `conditions`, one per policy.
    pub(super) fn new<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Self {
        let mut numbers: HashMap<String, usize> = HashMap::new();
        let mut tests = Vec::new();
        let plans = conditions.into_iter().map(|condition| plan(condition, &mut numbers, &mut tests)).collect();
        Self { tests, plans }
    }

    /// A memo for one record.
    pub(super) fn memo(&self) -> Memo {
        Memo { tested: Bits::new(self.tests.len()), held: Bits::new(self.tests.len()) }
    }

    /// Whether `record` satisfies the conditions of the policy at `index`; the same answer as
    /// [`Condition::matches`].
    pub(super) fn matches(&self, index: usize, record: &AuditRecord, tenant: &TenantContext<'_>, memo: &mut Memo) -> bool {
        self.run(&self.plans[index], record, tenant, memo)
    }

    fn run(&self, plan: &Plan, record: &AuditRecord, tenant: &TenantContext<'_>, memo: &mut Memo) -> bool {
        match plan {
            Plan::All(items) => items.iter().all(|item| self.run(item, record, tenant, memo)),
            Plan::Any(items) => items.iter().any(|item| self.run(item, record, tenant, memo)),
            Plan::Not(inner) => !self.run(inner, record, tenant, memo),
            Plan::Test(number) => match memo.answer(*number) {
                Some(known) => known,
                None => {
                    let holds = self.tests[*number].matches(record, tenant);
                    memo.record(*number, holds);
                    holds
                }
            },
        }
    }

    /// How many distinct predicates the plans test.
    #[cfg(test)]
    fn distinct(&self) -> usize {
        self.tests.len()
    }
}

fn plan(condition: &Condition, numbers: &mut HashMap<String, usize>, tests: &mut Vec<Predicate>) -> Plan {
    match condition {
        Condition::All(items) => Plan::All(items.iter().map(|item| plan(item, numbers, tests)).collect()),
        Condition::Any(items) => Plan::Any(items.iter().map(|item| plan(item, numbers, tests)).collect()),
        Condition::Not(inner) => Plan::Not(Box::new(plan(inner, numbers, tests))),
        Condition::Predicate(predicate) => {
            let key = predicate.to_json().to_string();
            let number = *numbers.entry(key).or_insert_with(|| {
                tests.push((**predicate).clone());
                tests.len() - 1
            });
            Plan::Test(number)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(status: &str, ip: &str) -> AuditRecord {
        AuditRecord::from_value(json!({"Id": "r-1", "RecordType": 1, "CreationTime": "2026-01-05T10:00:00", "Operation": "Set-Mailbox",
                                       "ResultStatus": status, "ClientIP": ip}))
        .unwrap()
    }

    #[test]
    fn a_memo_remembers_each_answer_on_the_stack_or_past_it() {
        for count in [3, STACK_MEMO, STACK_MEMO + 100] {
            let mut memo = Memo { tested: Bits::new(count), held: Bits::new(count) };
            assert!(matches!(memo.tested, Bits::Stack(_)) == (count <= STACK_MEMO));
            for number in (0..count).step_by(7) {
                assert_eq!(memo.answer(number), None);
                memo.record(number, number % 2 == 0);
            }
            for number in 0..count {
                let expected = (number % 7 == 0).then_some(number % 2 == 0);
                assert_eq!(memo.answer(number), expected, "{count} {number}");
            }
        }
    }

    #[test]
    fn identical_predicates_of_different_policies_share_one_number_and_answer_like_the_conditions() {
        let not_failed = json!({"not": {"field": "ResultStatus", "op": "in", "value": ["False", "Failed"]}});
        let outside = json!({"field": "ClientIP", "op": "ip_in_cidr", "value": ["10.0.0.0/8"]});
        let conditions: Vec<Condition> = [
            json!({"all": [not_failed, {"not": outside}]}),
            json!({"any": [outside, not_failed]}),
            json!({"all": [not_failed, {"field": "ClientIP", "op": "ip_in_cidr", "value": ["10.0.0.0/8"], "quantifier": "all"}]}),
        ]
        .iter()
        .map(|c| Condition::from_json(c).unwrap())
        .collect();
        let plans = Plans::new(&conditions);
        assert_eq!(plans.distinct(), 3, "the shared predicates are tested once; a different quantifier is another predicate");
        let tenant = TenantContext::default();
        for (status, ip) in [("True", "10.1.2.3"), ("True", "192.0.2.1"), ("Failed", "10.1.2.3"), ("Failed", "192.0.2.1")] {
            let record = record(status, ip);
            let mut memo = plans.memo();
            for (index, condition) in conditions.iter().enumerate() {
                assert_eq!(
                    plans.matches(index, &record, &tenant, &mut memo),
                    condition.matches(&record, &tenant),
                    "{status} {ip} #{index}"
                );
            }
        }
    }
}
