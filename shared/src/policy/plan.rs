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

/// One record's answers: per predicate number, unknown, false or true. On the stack when the
/// engine has at most [`STACK_MEMO`] distinct predicates (nearly always).
#[allow(clippy::large_enum_variant)] // On the stack on purpose: no allocation per record.
pub(super) enum Memo {
    Stack([u8; STACK_MEMO]),
    Heap(Vec<u8>),
}

const STACK_MEMO: usize = 512;

impl Memo {
    fn slots(&mut self) -> &mut [u8] {
        match self {
            Self::Stack(slots) => slots,
            Self::Heap(slots) => slots,
        }
    }
}

const UNKNOWN: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;

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
        if self.tests.len() <= STACK_MEMO { Memo::Stack([UNKNOWN; STACK_MEMO]) } else { Memo::Heap(vec![UNKNOWN; self.tests.len()]) }
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
            Plan::Test(number) => match memo.slots()[*number] {
                UNKNOWN => {
                    let holds = self.tests[*number].matches(record, tenant);
                    memo.slots()[*number] = if holds { TRUE } else { FALSE };
                    holds
                }
                known => known == TRUE,
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
