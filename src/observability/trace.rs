//! The invocation's X-Ray trace header, carried from the Lambda context to the calls that pass it
//! on (EventBridge's `PutEvents` entry), so that the notifier's invocation joins the reset's trace.
//!
//! A task-local rather than the `_X_AMZN_TRACE_ID` variable the runtime also sets: that variable
//! is one per process, and wrong as soon as the runtime serves invocations concurrently.

use std::future::Future;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use lambda_runtime::Context;

tokio::task_local! {
    static TRACE_HEADER: Option<String>;
}

/// The trace header of the invocation being served, if it has one (`None` outside Lambda).
pub fn current() -> Option<String> {
    TRACE_HEADER.try_with(Clone::clone).ok().flatten()
}

/// Runs `work` with `header` as the invocation's trace header.
pub async fn with_header<F: Future>(header: Option<String>, work: F) -> F::Output {
    TRACE_HEADER.scope(header, work).await
}

/// Middleware: serves the request with the trace header of its Lambda invocation, which
/// `lambda_http` puts in the request's extensions.
pub async fn from_lambda_context(request: Request, next: Next) -> Response {
    let header = request.extensions().get::<Context>().and_then(|context| context.xray_trace_id.clone());
    with_header(header, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_header_is_the_one_of_the_invocation_being_served_and_none_outside() {
        assert_eq!(current(), None);
        let root = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let seen = with_header(Some(root.to_owned()), async {
            tokio::task::yield_now().await;
            current()
        })
        .await;
        assert_eq!(seen.as_deref(), Some(root));
        assert_eq!(current(), None);
    }
}
