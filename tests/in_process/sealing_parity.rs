//! Timing parity with sealing on: an unknown identifier costs the same KMS work as a known one (one
//! `Encrypt` of a plaintext the token's size, bound to a keyed hash of the identifier and a `jti`),
//! so the round trip does not tell them apart; no KMS request holds an address (CloudTrail records
//! each encryption context in clear); and a KMS that fails fails both alike. The publisher is the one
//! the Lambda's wiring builds (metric wrapper included); KMS and EventBridge are a stub that counts
//! the `Encrypt` calls (moto keeps no count), and moto for the last test.
//! `tools/with-moto cargo test --test in_process sealing_parity`

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::support::{SECRET, TestApp, api_config, moto_sdk_config, sdk_config_for, serve};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use medusa_reset::app::wiring::reset_publisher;
use medusa_reset::domain::token::SigningSecret;
use medusa_reset::identity::MemoryIdentityStore;
use serde_json::{Value, json};

const KEY_ID: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// One `Encrypt` as the stub received it.
#[derive(Debug, Clone)]
struct EncryptCall {
    context: BTreeMap<String, String>,
    plaintext: Vec<u8>,
    /// The request as it reached KMS.
    body: String,
}

#[derive(Clone, Default)]
struct KmsStub {
    calls: Arc<Mutex<Vec<EncryptCall>>>,
    failing: bool,
}

impl KmsStub {
    fn take(&self) -> Vec<EncryptCall> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// Answers `TrentService.Encrypt` as KMS does (JSON 1.1), or with an internal error when failing;
/// and `AWSEvents.PutEvents` as EventBridge does, accepting the entry.
async fn aws(State(stub): State<KmsStub>, headers: HeaderMap, body: String) -> impl IntoResponse {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let content_type = [("content-type", "application/x-amz-json-1.1")];
    if target == "AWSEvents.PutEvents" {
        let answer = json!({"FailedEntryCount": 0, "Entries": [{"EventId": "stub-event"}]});
        return (StatusCode::OK, content_type, answer.to_string());
    }
    assert_eq!(target, "TrentService.Encrypt", "the route calls only Encrypt and PutEvents");
    let request: Value = serde_json::from_str(&body).unwrap();
    let context = serde_json::from_value(request["EncryptionContext"].clone()).unwrap();
    let plaintext = STANDARD.decode(request["Plaintext"].as_str().unwrap()).unwrap();
    stub.calls.lock().unwrap().push(EncryptCall { context, plaintext, body: body.clone() });
    if stub.failing {
        let error = json!({"__type": "KMSInternalException", "message": "stub outage"});
        return (StatusCode::INTERNAL_SERVER_ERROR, content_type, error.to_string());
    }
    let ciphertext = STANDARD.encode(b"sealed-by-the-stub");
    let answer = json!({"CiphertextBlob": ciphertext, "KeyId": KEY_ID, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"});
    (StatusCode::OK, content_type, answer.to_string())
}

/// The route with one account (`known@example.com`) and the Lambda's publisher, on the stub.
async fn sealing_app(stub: &KmsStub) -> TestApp {
    let endpoint = serve(Router::new().route("/", post(aws)).with_state(stub.clone())).await;
    let config = api_config(&[("TOKEN_KMS_KEY_ID", KEY_ID)]);
    let publisher = reset_publisher(&config, &secret(), &sdk_config_for(&endpoint).await);
    TestApp::new(&config, publisher, MemoryIdentityStore::with_identities([("known@example.com", "emailpass")]))
}

fn secret() -> SigningSecret {
    SigningSecret::parse(SECRET).expect("a long enough secret")
}

async fn reset(app: &TestApp, identifier: &str) -> StatusCode {
    app.reset(identifier).await.0.status()
}

#[tokio::test]
async fn an_unknown_identifier_costs_the_same_kms_encrypt_as_a_known_one() {
    let stub = KmsStub::default();
    let app = sealing_app(&stub).await;
    // Identifiers of one length, so the known one's token and the throwaway have one length.
    assert_eq!(reset(&app, "known@example.com").await, StatusCode::CREATED);
    let known = stub.take();
    assert_eq!(reset(&app, "other@example.com").await, StatusCode::CREATED);
    let unknown = stub.take();

    assert_eq!(known.len(), 1, "one Encrypt for a known identifier");
    assert_eq!(unknown.len(), 1, "one Encrypt for an unknown identifier");
    let (known, unknown) = (&known[0], &unknown[0]);
    assert_eq!(known.plaintext.len(), unknown.plaintext.len(), "the same size");
    let keys = |call: &EncryptCall| call.context.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(known), ["jti", "subject"]);
    assert_eq!(keys(unknown), keys(known), "the same kind of context");
    assert_eq!(known.context["subject"].len(), 64, "a keyed hash");
    assert_eq!(unknown.context["subject"].len(), 64, "a keyed hash");
    assert_ne!(known.context["subject"], unknown.context["subject"], "one per identifier");
    assert_eq!(unknown.context["jti"].len(), known.context["jti"].len(), "a jti like a token's");
    // The known plaintext is the token; the throwaway is none, so no usable token reaches KMS.
    assert_eq!(known.plaintext.iter().filter(|&&b| b == b'.').count(), 2, "a JWT");
    assert!(!unknown.plaintext.contains(&b'.'), "not a JWT");
}

#[tokio::test]
async fn no_kms_request_holds_an_address_on_either_path() {
    let stub = KmsStub::default();
    let app = sealing_app(&stub).await;
    assert_eq!(reset(&app, "known@example.com").await, StatusCode::CREATED);
    assert_eq!(reset(&app, "other@example.com").await, StatusCode::CREATED);
    let calls = stub.take();
    assert_eq!(calls.len(), 2);
    for call in calls {
        // Every part of the request but the plaintext, which CloudTrail does not record.
        let mut request: Value = serde_json::from_str(&call.body).unwrap();
        request.as_object_mut().unwrap().remove("Plaintext");
        let shown = request.to_string();
        for part in ["known", "other", "example.com", "@"] {
            assert!(!shown.contains(part), "{part:?} in what CloudTrail would record: {shown}");
        }
    }
}

#[tokio::test]
async fn a_kms_outage_fails_known_and_unknown_identifiers_alike() {
    let stub = KmsStub { failing: true, ..KmsStub::default() };
    let app = sealing_app(&stub).await;
    assert_eq!(reset(&app, "known@example.com").await, StatusCode::INTERNAL_SERVER_ERROR);
    let known = stub.take().len();
    assert_eq!(reset(&app, "other@example.com").await, StatusCode::INTERNAL_SERVER_ERROR);
    let unknown = stub.take().len();
    // The SDK retries an internal error; both paths make the same attempts.
    assert!(known >= 1);
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn an_unknown_identifier_is_served_by_a_real_kms_too() {
    // moto's KMS checks what AWS checks of an Encrypt (key, plaintext of 1 to 4096 bytes, context).
    let sdk = moto_sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_id = kms.create_key().send().await.unwrap().key_metadata().unwrap().key_id().to_owned();
    let config = api_config(&[("TOKEN_KMS_KEY_ID", &key_id)]);
    let publisher = reset_publisher(&config, &secret(), &sdk);
    let app =
        TestApp::new(&config, publisher, MemoryIdentityStore::with_identities([("known@example.com", "emailpass")]));
    assert_eq!(reset(&app, "known@example.com").await, StatusCode::CREATED);
    assert_eq!(reset(&app, "other@example.com").await, StatusCode::CREATED);
}
