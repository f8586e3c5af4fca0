//! In-memory claims: exact within one process, for `make run` and tests (and, without a table,
//! per Lambda execution environment only: a retry in another environment is not seen).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use super::{Claim, ClaimError, ClaimKey, ClaimStore, Ticket};
use crate::domain::clock::{epoch_seconds, epoch_seconds_ceil};

/// One claim: who holds it, whether its e-mail went out, and until when it counts.
#[derive(Debug, Clone)]
struct Record {
    owner: String,
    done: bool,
    expires_at: u64,
}

#[derive(Debug, Default)]
pub struct MemoryClaimStore {
    records: Mutex<HashMap<ClaimKey, Record>>,
}

impl MemoryClaimStore {
    fn records(&self) -> Result<std::sync::MutexGuard<'_, HashMap<ClaimKey, Record>>, ClaimError> {
        self.records.lock().map_err(|e| ClaimError(e.to_string()))
    }
}

impl ClaimStore for MemoryClaimStore {
    async fn claim(&self, key: &ClaimKey, until: SystemTime, now: SystemTime) -> Result<Claim, ClaimError> {
        let now = epoch_seconds(now);
        let mut records = self.records()?;
        // Expired records go, as TTL would take them, so memory stays bounded by the claims still live.
        records.retain(|_, record| record.expires_at > now);
        let ticket = Ticket::new(key);
        if let Some(record) = records.get(key) {
            return Ok(Claim::over(ticket, Some(&record.owner), record.done));
        }
        let record = Record { owner: ticket.owner.clone(), done: false, expires_at: epoch_seconds_ceil(until) };
        records.insert(key.clone(), record);
        Ok(Claim::Claimed(ticket))
    }

    async fn complete(&self, ticket: &Ticket, keep_until: SystemTime) -> Result<(), ClaimError> {
        let record = Record { owner: ticket.owner.clone(), done: true, expires_at: epoch_seconds_ceil(keep_until) };
        self.records()?.insert(ticket.key.clone(), record);
        Ok(())
    }

    async fn release(&self, ticket: &Ticket) -> Result<(), ClaimError> {
        let mut records = self.records()?;
        if records.get(&ticket.key).is_some_and(|record| record.owner == ticket.owner && !record.done) {
            records.remove(&ticket.key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::at_epoch_seconds as at;
    use crate::idempotency::Holder;

    fn key() -> ClaimKey {
        ClaimKey::reset("6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f").unwrap()
    }

    fn ticket(claim: Claim) -> Ticket {
        match claim {
            Claim::Claimed(ticket) => ticket,
            Claim::Held(holder) => panic!("held: {holder:?}"),
        }
    }

    #[tokio::test]
    async fn a_claim_in_progress_holds_until_its_deadline_and_then_lets_a_retry_claim() {
        let claims = MemoryClaimStore::default();
        ticket(claims.claim(&key(), at(1_010), at(1_000)).await.unwrap());
        assert_eq!(claims.claim(&key(), at(1_020), at(1_009)).await.unwrap(), Claim::Held(Holder::InProgress));
        // The first attempt crashed: at its deadline the retry may send.
        ticket(claims.claim(&key(), at(1_020), at(1_010)).await.unwrap());
    }

    #[tokio::test]
    async fn a_done_claim_holds_until_the_token_expires() {
        let claims = MemoryClaimStore::default();
        let first = ticket(claims.claim(&key(), at(1_010), at(1_000)).await.unwrap());
        claims.complete(&first, at(1_900)).await.unwrap();
        assert_eq!(claims.claim(&key(), at(1_110), at(1_100)).await.unwrap(), Claim::Held(Holder::Done));
        assert_eq!(claims.claim(&key(), at(1_910), at(1_899)).await.unwrap(), Claim::Held(Holder::Done));
        assert!(matches!(claims.claim(&key(), at(1_910), at(1_900)).await.unwrap(), Claim::Claimed(_)));
        assert!(
            matches!(
                claims.claim(&ClaimKey::reset("another").unwrap(), at(1_010), at(1_000)).await,
                Ok(Claim::Claimed(_))
            ),
            "another token is another reset"
        );
    }

    #[tokio::test]
    async fn a_release_frees_only_its_own_claim_in_progress() {
        let claims = MemoryClaimStore::default();
        let first = ticket(claims.claim(&key(), at(1_010), at(1_000)).await.unwrap());
        claims.release(&first).await.unwrap();
        let second = ticket(claims.claim(&key(), at(1_010), at(1_001)).await.unwrap());
        // The first ticket is stale: releasing it again leaves the second attempt's claim alone.
        claims.release(&first).await.unwrap();
        assert_eq!(claims.claim(&key(), at(1_010), at(1_002)).await.unwrap(), Claim::Held(Holder::InProgress));
        claims.complete(&second, at(1_900)).await.unwrap();
        claims.release(&second).await.unwrap();
        assert_eq!(claims.claim(&key(), at(1_010), at(1_003)).await.unwrap(), Claim::Held(Holder::Done));
    }
}
