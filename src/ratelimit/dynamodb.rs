//! DynamoDB rate limiter: every counter of a request bumped in one `TransactWriteItems`, each
//! update conditional on its counter being under its limit, so concurrent requests in any number of
//! execution environments cannot overshoot. Items carry a TTL attribute so ended windows expire.
//! A request that fails after it was counted gives its identifier's counts back.
//!
//! Every write is safe to repeat. The SDK sends a write again when its reply is lost, and the
//! write may have been applied all the same, so each counter keeps the markers of the requests it
//! counted (`Subject::request`): a count is made only where the request's marker is not there yet,
//! a give-back only where it is, taking the marker with it.
//!
//! Another transaction holding a counter cancels ours with `TransactionConflict`; a write is then
//! tried again after a short jittered back-off. A conflict on an identifier's counter means another
//! request for that identifier is in flight, and that one sends the e-mail; a conflict on the client
//! IP's counter alone says nothing about the identifier, so it never drops the request: if it
//! outlasts the attempts the check fails, and the request with it (a 500 the user can retry).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::{Counter, LimitError, Limits, RateLimiter, Subject, Verdict, retry_after};

/// The table's key attribute and its TTL attribute (`template.yaml` declares both).
const KEY: &str = "pk";
const TTL: &str = "expires_at";
/// The string set of the markers of the requests an item counted.
const REQUESTS: &str = "requests";
/// Items outlive their window a little, so a clock skew between environments cannot reset a count.
const TTL_GRACE_SECS: u64 = 300;
/// Attempts at a write while other transactions hold one of its items.
const CONFLICT_ATTEMPTS: u32 = 7;
/// The longest wait before the first retry; each later one may wait twice as long. A transaction
/// holds its items for ten or twenty milliseconds, so the first waits let one holder finish, and
/// the later ones outlast a burst of requests behind one address (README: Benchmarks). The whole
/// series (at most 4 + 8 + … + 128 = 252 ms) stays well inside `RATE_LIMIT_TIME_LIMIT`.
const FIRST_BACKOFF: Duration = Duration::from_millis(4);

/// Counts one: the count, the request's marker, and the TTL the first count sets.
const COUNT: &str = "ADD #count :one, #requests :request SET #ttl = if_not_exists(#ttl, :ttl)";
/// Takes one back, with the request's marker.
const GIVE_BACK: &str = "ADD #count :minus_one DELETE #requests :request";
const UNDER_LIMIT: &str = "(attribute_not_exists(#count) OR #count < :max) AND NOT contains(#requests, :marker)";
const NOT_COUNTED: &str = "NOT contains(#requests, :marker)";
const COUNTED: &str = "contains(#requests, :marker)";

/// The wait before retry `retry` (0 for the first): half of its ceiling fixed and half random, so
/// requests that met once spread apart instead of meeting again.
fn backoff(retry: u32) -> Duration {
    let ceiling = FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(retry));
    let half_micros = u64::try_from(ceiling.as_micros() / 2).unwrap_or(u64::MAX);
    let random = uuid::Uuid::new_v4().as_u64_pair().1 % (half_micros + 1);
    Duration::from_micros(half_micros + random)
}

/// What a cancelled check says, read from its reasons: one per item, the client IP's first.
#[derive(Debug, PartialEq, Eq)]
enum Cancelled {
    /// An earlier attempt of this request was applied, though its reply was lost.
    AlreadyCounted,
    /// This request was counted against its client alone already (see `count_ip`).
    AlreadyCountedAgainstTheClient,
    IpOver,
    IdentifierOver,
    /// Another transaction holds one of the identifier's counters.
    IdentifierContended,
    /// Another transaction holds the client IP's counter, and no other.
    IpContended,
    /// DynamoDB throttled one of the items: nothing was written, and a later attempt may pass.
    Throttled,
    Unexpected(Vec<String>),
}

impl Cancelled {
    fn read(reasons: &[CancellationReason], request: &str) -> Self {
        let code = |reason: &CancellationReason| reason.code().unwrap_or("None").to_owned();
        let codes: Vec<String> = reasons.iter().map(code).collect();
        let Some((ip, identity)) = reasons.split_first() else {
            return Self::Unexpected(codes);
        };
        // A write is all or nothing, so the marker on the client's counter tells which one was made.
        if carries(ip, request) {
            return if identity.iter().all(|reason| carries(reason, request)) {
                Self::AlreadyCounted
            } else {
                Self::AlreadyCountedAgainstTheClient
            };
        }
        let (ip_code, identity_codes) = (codes[0].as_str(), &codes[1..]);
        let any_identity = |wanted: &str| identity_codes.iter().any(|code| code == wanted);
        if ip_code == "ConditionalCheckFailed" {
            Self::IpOver
        } else if any_identity("ConditionalCheckFailed") {
            Self::IdentifierOver
        } else if codes.iter().any(|code| code == "ThrottlingError") {
            Self::Throttled
        } else if any_identity("TransactionConflict") {
            Self::IdentifierContended
        } else if ip_code == "TransactionConflict" && identity_codes.iter().all(|code| code == "None") {
            Self::IpContended
        } else {
            Self::Unexpected(codes)
        }
    }
}

/// Whether a cancelled item, as it stood (`ALL_OLD`), holds this request's marker.
fn carries(reason: &CancellationReason, request: &str) -> bool {
    reason
        .item()
        .and_then(|item| item.get(REQUESTS))
        .and_then(|requests| requests.as_ss().ok())
        .is_some_and(|markers| markers.iter().any(|marker| marker == request))
}

#[derive(Debug, Clone)]
pub struct DynamoDbRateLimiter {
    client: Client,
    table: String,
    limits: Limits,
}

impl DynamoDbRateLimiter {
    pub fn new(client: Client, table: String, limits: Limits) -> Self {
        Self { client, table, limits }
    }

    /// The names every expression uses, and the request's marker as a value and as a set of one.
    /// (DynamoDB refuses names and values an expression does not use, so the TTL's are added apart.)
    fn common(request: &str) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
        let names =
            HashMap::from([("#count".to_owned(), "count".to_owned()), ("#requests".to_owned(), REQUESTS.to_owned())]);
        let values = HashMap::from([
            (":marker".to_owned(), AttributeValue::S(request.to_owned())),
            (":request".to_owned(), AttributeValue::Ss(vec![request.to_owned()])),
        ]);
        (names, values)
    }

    /// One counter's update in the check's transaction. A cancelled item comes back as it stood,
    /// so a repeated check can see its own marker.
    fn counted_under_limit(&self, counter: &Counter, request: &str) -> Result<Update, LimitError> {
        let (mut names, mut values) = Self::common(request);
        names.insert("#ttl".to_owned(), TTL.to_owned());
        values.insert(":one".to_owned(), AttributeValue::N("1".into()));
        values.insert(":max".to_owned(), AttributeValue::N(counter.max.to_string()));
        values.insert(":ttl".to_owned(), AttributeValue::N((counter.window_end + TTL_GRACE_SECS).to_string()));
        Update::builder()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(counter.key.clone()))
            .update_expression(COUNT)
            .condition_expression(UNDER_LIMIT)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| LimitError(e.to_string()))
    }

    /// One counter's own update: `expression` under `condition`, with the request's marker.
    fn single(&self, key: &str, request: &str, expression: &str, condition: &str) -> UpdateItemFluentBuilder {
        let (names, values) = Self::common(request);
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(key.to_owned()))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
    }

    /// Sends a one-item update, again after a back-off while a transaction holds the item.
    /// `Ok(false)`: its condition failed, and nothing was written.
    async fn send_single(&self, update: UpdateItemFluentBuilder) -> Result<bool, LimitError> {
        for retry in 0..CONFLICT_ATTEMPTS {
            if retry > 0 {
                tokio::time::sleep(backoff(retry - 1)).await;
            }
            let error = match update.clone().send().await {
                Ok(_) => return Ok(true),
                Err(error) => error,
            };
            match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => return Ok(false),
                Some(UpdateItemError::TransactionConflictException(_)) => {}
                _ => return Err(LimitError(DisplayErrorContext(&error).to_string())),
            }
        }
        Err(LimitError(format!("a counter stayed held by other transactions over {CONFLICT_ATTEMPTS} attempts")))
    }

    /// Counts a request against the client IP alone, when its identifier was over the limit: never
    /// limited itself (the transaction found the client under its limit), once per request.
    async fn count_ip(&self, ip: &Counter, request: &str) -> Result<(), LimitError> {
        let update = self
            .single(&ip.key, request, COUNT, NOT_COUNTED)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":ttl", AttributeValue::N((ip.window_end + TTL_GRACE_SECS).to_string()));
        // A failed condition: this request's count is there already.
        self.send_single(update).await.map(|_| ())
    }

    /// Takes this request's count back from a counter. Where its marker is missing (never counted
    /// here, given back already, or the counter expired) there is nothing to give back.
    async fn give_back(&self, counter: &Counter, request: &str) -> Result<(), LimitError> {
        let update = self
            .single(&counter.key, request, GIVE_BACK, COUNTED)
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()));
        self.send_single(update).await.map(|_| ())
    }

    /// One attempt at the check's transaction: `None` when it was applied, else the reasons.
    async fn transact(&self, items: &[TransactWriteItem]) -> Result<Option<Vec<CancellationReason>>, LimitError> {
        let error = match self.client.transact_write_items().set_transact_items(Some(items.to_vec())).send().await {
            Ok(_) => return Ok(None),
            Err(error) => error,
        };
        match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                Ok(Some(cancelled.cancellation_reasons().to_vec()))
            }
            _ => Err(LimitError(DisplayErrorContext(&error).to_string())),
        }
    }
}

impl RateLimiter for DynamoDbRateLimiter {
    async fn check(&self, subject: &Subject, now: SystemTime) -> Result<Verdict, LimitError> {
        let counters = self.limits.counters(subject, now);
        let items = counters
            .iter()
            .map(|counter| {
                let update = self.counted_under_limit(counter, &subject.request)?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect::<Result<Vec<_>, LimitError>>()?;
        let mut last = Cancelled::Unexpected(Vec::new());
        for retry in 0..CONFLICT_ATTEMPTS {
            if retry > 0 {
                tokio::time::sleep(backoff(retry - 1)).await;
            }
            let Some(reasons) = self.transact(&items).await? else {
                return Ok(Verdict::Allowed);
            };
            last = Cancelled::read(&reasons, &subject.request);
            match &last {
                Cancelled::AlreadyCounted => return Ok(Verdict::Allowed),
                Cancelled::AlreadyCountedAgainstTheClient => return Ok(Verdict::IdentifierLimited),
                Cancelled::IpOver => {
                    return Ok(Verdict::IpLimited { retry_after: retry_after(counters[0].window_end, now) });
                }
                Cancelled::IdentifierOver => {
                    self.count_ip(&counters[0], &subject.request).await?;
                    return Ok(Verdict::IdentifierLimited);
                }
                Cancelled::Unexpected(codes) => return Err(LimitError(format!("transaction cancelled: {codes:?}"))),
                Cancelled::IdentifierContended | Cancelled::IpContended | Cancelled::Throttled => {}
            }
        }
        if last == Cancelled::IdentifierContended {
            // Another request for this identifier held its counter throughout: that request sends
            // the e-mail, so this one answers as usual and sends nothing.
            return Ok(Verdict::IdentifierLimited);
        }
        Err(LimitError(format!("the counters stayed held or throttled over {CONFLICT_ATTEMPTS} attempts: {last:?}")))
    }

    async fn release(&self, subject: &Subject, now: SystemTime) -> Result<(), LimitError> {
        // The identifier's counters only (the client IP's is first): each on its own, so that one
        // already expired does not keep the other from coming back.
        for counter in self.limits.counters(subject, now).iter().skip(1) {
            self.give_back(counter, &subject.request).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(code: &str, markers: Option<&[&str]>) -> CancellationReason {
        let builder = CancellationReason::builder().code(code);
        match markers {
            Some(markers) => {
                builder.item(REQUESTS, AttributeValue::Ss(markers.iter().map(|m| (*m).to_owned()).collect()))
            }
            None => builder,
        }
        .build()
    }

    fn read(reasons: &[(&str, Option<&[&str]>)]) -> Cancelled {
        let reasons: Vec<CancellationReason> = reasons.iter().map(|(code, markers)| reason(code, *markers)).collect();
        Cancelled::read(&reasons, "mine")
    }

    #[test]
    fn a_cancellation_is_read_marker_first_then_limits_then_conflicts() {
        let (mine, others): (Option<&[&str]>, Option<&[&str]>) = (Some(&["other", "mine"]), Some(&["other"]));
        let over = "ConditionalCheckFailed";
        let conflict = "TransactionConflict";
        assert_eq!(read(&[(over, mine), (over, mine), (over, mine)]), Cancelled::AlreadyCounted);
        assert_eq!(read(&[(over, mine), (over, others), ("None", None)]), Cancelled::AlreadyCountedAgainstTheClient);
        assert_eq!(read(&[(over, others), (over, others), ("None", None)]), Cancelled::IpOver);
        assert_eq!(read(&[(conflict, None), ("None", None), (over, others)]), Cancelled::IdentifierOver);
        assert_eq!(read(&[(conflict, None), (conflict, None), ("None", None)]), Cancelled::IdentifierContended);
        assert_eq!(read(&[("None", None), ("None", None), (conflict, None)]), Cancelled::IdentifierContended);
        assert_eq!(read(&[(conflict, None), ("None", None), ("None", None)]), Cancelled::IpContended);
        assert_eq!(
            read(&[(conflict, None), ("ThrottlingError", None)]),
            Cancelled::Throttled,
            "tried again, not dropped"
        );
        assert_eq!(read(&[("ThrottlingError", None), ("None", None)]), Cancelled::Throttled);
        assert!(matches!(read(&[(conflict, None), ("ValidationError", None)]), Cancelled::Unexpected(_)));
        assert!(matches!(read(&[]), Cancelled::Unexpected(_)));
    }

    #[test]
    fn back_offs_double_with_jitter_and_stay_a_few_milliseconds() {
        for retry in 0..CONFLICT_ATTEMPTS - 1 {
            let ceiling = FIRST_BACKOFF * 2u32.pow(retry);
            let waits: Vec<Duration> = (0..200).map(|_| backoff(retry)).collect();
            assert!(waits.iter().all(|wait| *wait >= ceiling / 2 && *wait <= ceiling), "{retry}: {waits:?}");
            let distinct: std::collections::HashSet<&Duration> = waits.iter().collect();
            assert!(distinct.len() > 10, "jittered: {waits:?}");
        }
        let series: Duration = (0..CONFLICT_ATTEMPTS - 1).map(|retry| FIRST_BACKOFF * 2u32.pow(retry)).sum();
        assert_eq!(series, Duration::from_millis(252));
        assert!(series < crate::reset::RATE_LIMIT_TIME_LIMIT / 5, "room left for the attempts themselves");
    }
}
